"""Called by the hook at the top of sm's LVHDoISCSISR.load.

The hook tests the port inline (so an iSCSI SR never imports RBDSR code) and
calls `divert(self, sr_uuid)`; `divert` turns the half-built LVHDoISCSISR
instance into an RBDSR instance and runs RBDSR's load instead of the iSCSI one.

Why `__class__` assignment works: RBDSR.RBDSR subclasses the LVHDoISCSISR
class the shim imports. When XAPI runs the flat layout's LVMoISCSISR script,
the instance's class is `__main__.LVHDoISCSISR`, a different class object
with the same source (the module imported by name is a second copy). Both
are plain classes (instance __dict__, no __slots__), so Python accepts the
assignment; we check the instance really is an LVHDoISCSISR of either copy
and that the switch took.
"""

DIVERSION_PORT = "6789"


def wants_rbd(dconf):
    """The hook's decision: port exactly 6789 (spaces stripped) or rbd=true.

    16789, 67890, '6789 ' + junk, '' and 3260 are not RBD."""
    if not isinstance(dconf, dict):
        return False
    port = str(dconf.get("port", "")).strip()
    flag = str(dconf.get("rbd", "")).strip().lower()
    return port == DIVERSION_PORT or flag == "true"


def _is_lvhdoiscsi(obj, shim_cls):
    if isinstance(obj, shim_cls):
        return True
    # The __main__ copy of the flat module: same class name, an LVHDSR subclass.
    return any(c.__name__ == "LVHDoISCSISR" for c in type(obj).__mro__)


def divert(sr, sr_uuid):
    """Make `sr` an RBDSR and load it. Returns what RBDSR.load returns (None)."""
    from rbdsr.smglue import shim
    import RBDSR

    if not _is_lvhdoiscsi(sr, shim.LVHDoISCSISR.LVHDoISCSISR):
        raise shim.xs_errors.XenError(
            "SMGeneral", opterr="RBDSR hook called on a %s, not an LVHDoISCSISR" % type(sr).__name__)
    origin = "%s.%s" % (type(sr).__module__, type(sr).__name__)
    try:
        sr.__class__ = RBDSR.RBDSR
    except TypeError as e:
        raise shim.xs_errors.XenError("SMGeneral", opterr="cannot divert to RBDSR: %s" % e)
    if type(sr) is not RBDSR.RBDSR:
        raise shim.xs_errors.XenError("SMGeneral", opterr="diversion to RBDSR did not take")
    shim.util.SMlog("RBDSR: SR %s diverted from %s to RBDSR (sm layout %s)"
                    % (sr_uuid or "(probe)", origin, shim.LAYOUT))
    return sr.load(sr_uuid)
