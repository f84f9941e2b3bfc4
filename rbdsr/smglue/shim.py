"""The one import shim for both sm layouts.

Package layout (xapi-project/sm 4.x): `from sm import SR, ...`,
`from sm.core import util, xs_errors, scsiutil`, `from sm.drivers import
LVHDSR, LVHDoISCSISR`. Flat layout (XCP-ng 8.3): plain modules in
/opt/xensource/sm, put on sys.path when not there already.

Everything else gets sm's modules from here: `from rbdsr.smglue import shim`,
then `shim.util.SMlog(...)`, `shim.LVHDoISCSISR.LVHDoISCSISR`, ...
Importing this module without any sm raises ImportError.
"""
import importlib
import sys

from rbdsr.smglue import layout

# our name -> module path in the package layout (the flat name is our name)
MODULES = {
    "SR": "sm.SR",
    "VDI": "sm.VDI",
    "SRCommand": "sm.SRCommand",
    "lvutil": "sm.lvutil",
    "lvhdutil": "sm.lvhdutil",
    "util": "sm.core.util",
    "xs_errors": "sm.core.xs_errors",
    "scsiutil": "sm.core.scsiutil",
    "LVHDSR": "sm.drivers.LVHDSR",
    "LVHDoISCSISR": "sm.drivers.LVHDoISCSISR",
}

LAYOUT = layout.detect()
if LAYOUT == layout.NONE:
    raise ImportError("no sm (storage manager) here: neither the sm package nor %s" % layout.FLAT_DIR)

if LAYOUT == layout.FLAT and layout._find_spec("SR") is None and layout.FLAT_DIR not in sys.path:
    sys.path.append(layout.FLAT_DIR)

_mods = dict((name, importlib.import_module(path if LAYOUT == layout.PACKAGE else name))
             for name, path in MODULES.items())

SR = _mods["SR"]
VDI = _mods["VDI"]
SRCommand = _mods["SRCommand"]
lvutil = _mods["lvutil"]
lvhdutil = _mods["lvhdutil"]
util = _mods["util"]
xs_errors = _mods["xs_errors"]
scsiutil = _mods["scsiutil"]
LVHDSR = _mods["LVHDSR"]
LVHDoISCSISR = _mods["LVHDoISCSISR"]
del _mods
