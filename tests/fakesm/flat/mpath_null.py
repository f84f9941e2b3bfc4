"""Stand-in of sm's mpath_null: the non-multipath device path of a SCSIid."""
import os

DEVBYSCSIPATH = "/dev/disk/by-scsid"


def activate():
    return


def deactivate():
    return


def path(SCSIid):
    return os.path.join(DEVBYSCSIPATH, SCSIid)


def refresh(SCSIid, npaths):
    return


def reset(SCSIid, explicit_unmap=False):
    return
