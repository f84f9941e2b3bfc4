"""The one import shim for every sm shape (rbdsr.smglue.shapes).

The running sm's modules and classes under neutral names, so the driver is
written once: `shim.ISCSI_SR` is LVMoISCSISR / LVHDoISCSISR, `shim.LVM_SR` its
LVM base (LVMSR / LVHDSR), `shim.ISCSI_VDI` / `shim.LVM_VDI` their VDIs, and
`shim.util`, `shim.xs_errors`, `shim.lvutil`, `shim.scsiutil`, `shim.cowutil`,
`shim.SRCommand` the modules. Flat shapes get /opt/xensource/sm on sys.path
(last) when it is not there already. Importing this without any sm raises
ImportError.
"""
import importlib
import sys

from rbdsr.smglue import shapes

SHAPE = shapes.running()
if SHAPE is None:
    raise ImportError("no sm (storage manager) here: neither the sm package nor %s" % shapes.FLAT_DIR)

if SHAPE.kind == "flat" and shapes._find_spec("SR") is None and shapes.FLAT_DIR not in sys.path:
    sys.path.append(shapes.FLAT_DIR)

_mods = dict((name, importlib.import_module(path)) for name, path in SHAPE.modules.items())

SR = _mods["SR"]
VDI = _mods["VDI"]
SRCommand = _mods["SRCommand"]
lvutil = _mods["lvutil"]
cowutil = _mods["cowutil"]
util = _mods["util"]
xs_errors = _mods["xs_errors"]
scsiutil = _mods["scsiutil"]
ISCSI_SR = getattr(_mods["ISCSI"], SHAPE.iscsi_class)
ISCSI_VDI = getattr(_mods["ISCSI"], SHAPE.iscsi_vdi)
LVM_SR = getattr(_mods["LVM"], SHAPE.lvm_class)
LVM_VDI = getattr(_mods["LVM"], SHAPE.lvm_vdi)
CAPABILITIES = list(_mods["ISCSI"].CAPABILITIES)
del _mods
