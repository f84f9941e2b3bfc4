"""Map an image and activate its VG as one step, rolled back on failure.

If anything after the map fails (the device holds no VG or another VG, or
activation fails), the VG is deactivated and the device unmapped again -- unless
it was already mapped before the call, in which case someone else owns the
mapping and it is left alone.
"""
from lvm_helpers import pv, vg as vgmod
from rbdsr import krbd
from rbdsr.errors import InUseError


def map_and_activate(image_id, monitors, cephx_id, key, vg_name, read_only=False, timeout=60.0,
                     check_vg=True, **map_kwargs):
    """Map image_id, check it carries `vg_name`, activate it; return MappedDevice."""
    was_mapped = krbd.find_mapped(image_id, map_kwargs.get("sysfs_root", krbd.sysfs.SYSFS)) is not None
    dev = krbd.map_image(image_id, monitors, cephx_id, key, read_only=read_only, timeout=timeout,
                         **map_kwargs)
    activating = False
    try:
        if check_vg:
            state, found = pv.device_state(dev.dev_path)
            if state != pv.PV or found != vg_name:
                raise InUseError("%s (%s) does not carry volume group %s (it holds: %s)"
                                 % (image_id.spec(), dev.dev_path, vg_name,
                                    "VG " + found if found else state))
        activating = True
        vgmod.activate(vg_name, timeout)
    except BaseException:
        if not was_mapped:
            _rollback(image_id, vg_name, activating, timeout, map_kwargs)
        raise
    return dev


def _rollback(image_id, vg_name, activating, timeout, map_kwargs):
    """Undo our own map (and a partial activation of the VG we found on it)."""
    if activating:
        try:
            vgmod.deactivate(vg_name, timeout)
        except Exception:  # noqa: BLE001 - best effort; the unmap below reports a real hold
            pass
    unmap_kwargs = dict((k, v) for k, v in map_kwargs.items()
                        if k in ("sysfs_root", "dev", "stable_root", "lock_path"))
    try:
        krbd.unmap(image_id, timeout=timeout, **unmap_kwargs)
    except InUseError:
        # We mapped it moments ago and nothing of ours is active: force it.
        krbd.unmap(image_id, force=True, timeout=timeout, **unmap_kwargs)


def deactivate_and_unmap(image_id, vg_name, force=False, timeout=60.0):
    """Deactivate `vg_name` then unmap (idempotent). With force, a failed
    deactivation does not stop the forced unmap."""
    if krbd.find_mapped(image_id) is None:
        return False
    try:
        vgmod.deactivate(vg_name, timeout)
    except Exception:
        if not force:
            raise
    return krbd.unmap(image_id, force=force, timeout=timeout)
