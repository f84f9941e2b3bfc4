"""Which sm layout this machine has, found without importing any of sm.

- 'package': the `sm` package of xapi-project/sm 4.x (sm, sm.core, sm.drivers);
- 'flat': XCP-ng 8.3's plain modules in /opt/xensource/sm;
- 'none': no sm at all (a build host, a test runner).
"""
import importlib.util
import os
import sys

FLAT_DIR = "/opt/xensource/sm"

PACKAGE = "package"
FLAT = "flat"
NONE = "none"


def _find_spec(name):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None


def running_flat_driver():
    """True when sm's flat LVHDoISCSISR.py runs as __main__ (XAPI executed
    LVMoISCSISR, a symlink to it) -- its module is then not importable by name
    until we import it again."""
    main = sys.modules.get("__main__")
    return bool(main is not None and hasattr(main, "LVHDoISCSISR")
                and hasattr(main, "DRIVER_INFO") and hasattr(main, "LVHDSR"))


def detect(flat_dir=FLAT_DIR):
    """'package', 'flat' or 'none'."""
    if "sm.drivers.LVHDoISCSISR" in sys.modules:
        return PACKAGE
    if "LVHDoISCSISR" in sys.modules or running_flat_driver():
        return FLAT
    if _find_spec("sm") is not None and _find_spec("sm.drivers") is not None:
        return PACKAGE
    if _find_spec("LVHDoISCSISR") is not None:
        return FLAT
    if os.path.isfile(os.path.join(flat_dir, "LVHDoISCSISR.py")):
        return FLAT
    return NONE
