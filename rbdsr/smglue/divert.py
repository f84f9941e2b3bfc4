"""Called by the hook at the top of sm's iSCSI LVM driver load().

The hook asks rbdsr.diversion (so an iSCSI SR never imports more RBDSR code)
and calls `divert(self, sr_uuid)`; `divert` turns the half-built LVMoISCSISR /
LVHDoISCSISR instance into an RBDSR instance and runs RBDSR's load instead.

Why `__class__` assignment works: driver.RBDSR subclasses the class the shim
imports. When XAPI runs a flat shape's LVMoISCSISR script, the instance's
class is `__main__.<class>`, a different class object with the same source
(the module imported by name is a second copy). Both are plain classes
(instance __dict__, no __slots__), so Python accepts the assignment; we check
the instance really is one of either copy and that the switch took.
"""
from rbdsr.callcheck import shown_uuid
from rbdsr.smglue import driver, shim


def _is_iscsi_sr(obj):
    if isinstance(obj, shim.ISCSI_SR):
        return True
    # The __main__ copy of the flat module: same class name, same LVM base name.
    names = [c.__name__ for c in type(obj).__mro__]
    return shim.SHAPE.iscsi_class in names and shim.SHAPE.lvm_class in names


def divert(sr, sr_uuid):
    """Make `sr` an RBDSR and load it. Returns what RBDSR.load returns (None)."""
    if not _is_iscsi_sr(sr):
        raise shim.xs_errors.XenError(
            "SMGeneral", opterr="RBDSR hook called on a %s, not an %s"
            % (type(sr).__name__, shim.SHAPE.iscsi_class))
    origin = "%s.%s" % (type(sr).__module__, type(sr).__name__)
    try:
        sr.__class__ = driver.RBDSR
    except TypeError as e:
        raise shim.xs_errors.XenError("SMGeneral", opterr="cannot divert to RBDSR: %s" % e)
    if type(sr) is not driver.RBDSR:
        raise shim.xs_errors.XenError("SMGeneral", opterr="diversion to RBDSR did not take")
    shim.util.SMlog("RBDSR: SR %s diverted from %s to RBDSR (sm shape %s)"
                    % (shown_uuid(sr_uuid), origin, shim.SHAPE.key))
    return sr.load(sr_uuid)
