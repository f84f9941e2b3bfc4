"""The udev rule that gives each mapped RBD image a /dev/disk/by-id name.

dom0's LVM (XenServer CA-410086, adopted by XCP-ng) scans only
/dev/disk/by-id, and dom0's own udev rules give /dev/rbdN no link there, so
without this rule LVM never sees an RBD physical volume.

The name is rbd-<cluster fsid>-<pool id>-<image id>, all from the kernel
client's sysfs attributes of the mapping: unique (an image id is unique in
its pool, a pool id in its cluster, the fsid across clusters), stable (a
rename of the pool or image changes none of them) and made only of
[0-9a-f-], so udev never has to mangle it. Only the image's head gets the
name: a mapped snapshot carries the same PV label, and LVM must not see it
as a duplicate PV.
"""
import os

from rbdsr import proc
from rbdsr.errors import RBDError
from rbdsr.installer import fileops, system

RULE = "etc/udev/rules.d/65-rbdsr.rules"
BY_ID = "/dev/disk/by-id"
PREFIX = "rbd-"
TIMEOUT = 30

TEXT = """\
# Installed by RBDSR (install_rbdsr.py), removed by its disable.
# A /dev/disk/by-id name for each mapped RBD image (head only, not snapshots),
# so LVM configured with scan = [ "/dev/disk/by-id" ] sees RBD physical volumes.
# The name: rbd-<cluster fsid>-<pool id>-<image id> (sysfs of /sys/bus/rbd).
ACTION=="remove", GOTO="rbdsr_end"
SUBSYSTEM!="block", GOTO="rbdsr_end"
KERNEL!="rbd[0-9]*", GOTO="rbdsr_end"
ENV{DEVTYPE}!="disk", GOTO="rbdsr_end"
SUBSYSTEMS=="rbd", ATTRS{current_snap}=="-", ATTRS{cluster_fsid}=="?*", ATTRS{pool_id}=="?*", ATTRS{image_id}=="?*", SYMLINK+="disk/by-id/%s$attr{cluster_fsid}-$attr{pool_id}-$attr{image_id}"
LABEL="rbdsr_end"
""" % PREFIX


def in_place(root):
    """True when root's rule file is RBDSR's, byte for byte."""
    return fileops.read_bytes(os.path.join(root, RULE)) == TEXT.encode()


def by_id_name(fsid, pool_id, image_id):
    """The link the rule makes for a mapping (the one home of the name's shape)."""
    return os.path.join(BY_ID, "%s%s-%s-%s" % (PREFIX, fsid, pool_id, image_id))


def sample_names(with_rule=True):
    """(udev_names, driver_names) of an RBD device as LVM may meet them: the
    kernel node, its /dev/block alias and (with the rule) the by-id link; and
    the driver's stable path (made by rbdsr.krbd, not udev), which sm hands to
    pvcreate/vgcreate."""
    from rbdsr import krbd  # the driver's path rule has its home there
    fsid = "8d9ba3a2-4c51-4f43-9a4c-0b0b7e7a8f21"
    names = [by_id_name(fsid, 2, "10c5b3a2f6e1")] if with_rule else []
    names += ["/dev/rbd0", "/dev/block/251:0"]
    return names, [krbd.stable_path(krbd.ImageId(fsid, "rbd", "", "RBDSR-probe"))]


def reload_now(timeout=TIMEOUT):
    """Make the running udev use the rules as they are now and re-run them on
    mapped RBD devices; None, or why that did not work (the rule still applies
    to the next map)."""
    udevadm = system.tool("udevadm")
    for argv in ([udevadm, "control", "--reload"],
                 [udevadm, "trigger", "--action=change", "--subsystem-match=block", "--sysname-match=rbd*"],
                 [udevadm, "settle", "--timeout=%d" % timeout]):
        try:
            r = proc.run(argv, timeout + 5)
        except RBDError as e:
            return str(e)
        if r.rc != 0:
            return "%s: %s" % (" ".join(argv[1:3]), (r.err or "").strip() or "rc %d" % r.rc)
    return None
