"""Reading the kernel RBD client's sysfs tree (pure parsing, no writes).

/sys/bus/rbd/devices/<N>/ holds one directory per mapped image; the
attributes that identify the image are compared *exactly* (never by
substring: "vm1" is not "vm10", and the same image name may exist in two
pools, namespaces or clusters).

Every function takes the sysfs root so tests can point it at a directory laid
out like sysfs.
"""
import collections
import os

SYSFS = "/sys"

# Identity attributes of a mapped device. pool_ns appeared with namespace
# support (kernel 4.19); when it is absent the device is in the default
# namespace.
IDENTITY_ATTRS = ("cluster_fsid", "pool", "pool_ns", "name", "current_snap")

HEAD_SNAP = "-"

MappedInfo = collections.namedtuple("MappedInfo", "dev_id fsid pool namespace image snap major minor")


def rbd_bus(sysfs=SYSFS):
    return os.path.join(sysfs, "bus", "rbd")


def devices_dir(sysfs=SYSFS):
    return os.path.join(rbd_bus(sysfs), "devices")


def read_attr(path, default=None):
    """One sysfs attribute value without its trailing newline (or `default`)."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except (IOError, OSError):
        return default
    text = data.decode("utf-8", "replace")
    if text.endswith("\n"):
        text = text[:-1]
    return text


def parse_device(dev_dir, dev_id):
    """MappedInfo for one /sys/bus/rbd/devices/<N> directory, or None if it vanished."""
    pool = read_attr(os.path.join(dev_dir, "pool"))
    name = read_attr(os.path.join(dev_dir, "name"))
    if pool is None or name is None:
        return None
    fsid = read_attr(os.path.join(dev_dir, "cluster_fsid"), "")
    ns = read_attr(os.path.join(dev_dir, "pool_ns"), "")
    snap = read_attr(os.path.join(dev_dir, "current_snap"), HEAD_SNAP) or HEAD_SNAP
    major = _int_or_none(read_attr(os.path.join(dev_dir, "major")))
    minor = _int_or_none(read_attr(os.path.join(dev_dir, "minor")))
    return MappedInfo(dev_id, fsid.strip().lower(), pool, ns, name, snap, major, minor)


def _int_or_none(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def list_mapped(sysfs=SYSFS):
    """All mapped RBD devices, sorted by device id."""
    base = devices_dir(sysfs)
    try:
        names = os.listdir(base)
    except OSError:
        return []
    out = []
    for n in names:
        if not n.isdigit():
            continue
        info = parse_device(os.path.join(base, n), int(n))
        if info is not None:
            out.append(info)
    out.sort(key=lambda i: i.dev_id)
    return out


def identity_matches(info, image_id):
    """Exact comparison of a MappedInfo with an ImageId.

    image_id.fsid may be None ("cluster unknown"): then the fsid is not compared
    and callers must refuse ambiguous results.
    """
    if image_id.fsid is not None and info.fsid != image_id.fsid.strip().lower():
        return False
    return (info.pool == image_id.pool
            and info.namespace == (image_id.namespace or "")
            and info.image == image_id.image
            and info.snap == (image_id.snap or HEAD_SNAP))


def block_name(dev_id):
    return "rbd%d" % dev_id


def block_dir(dev_id, sysfs=SYSFS):
    return os.path.join(sysfs, "block", block_name(dev_id))


def block_devnum(dev_id, sysfs=SYSFS):
    """(major, minor) from /sys/block/rbdN/dev, or None."""
    text = read_attr(os.path.join(block_dir(dev_id, sysfs), "dev"))
    if not text or ":" not in text:
        return None
    a, b = text.split(":", 1)
    try:
        return int(a), int(b)
    except ValueError:
        return None


def holders(dev_id, sysfs=SYSFS):
    """Names of the block devices stacked on rbdN (device-mapper, md...), with
    the dm name when there is one: e.g. ["dm-3 (VG_XenStorage--x-MGT)"]."""
    hdir = os.path.join(block_dir(dev_id, sysfs), "holders")
    try:
        names = sorted(os.listdir(hdir))
    except OSError:
        return []
    out = []
    for h in names:
        dm_name = read_attr(os.path.join(sysfs, "block", h, "dm", "name"))
        out.append("%s (%s)" % (h, dm_name) if dm_name else h)
    return out


def is_read_only(dev_id, sysfs=SYSFS):
    return read_attr(os.path.join(block_dir(dev_id, sysfs), "ro")) == "1"


def size_bytes(dev_id, sysfs=SYSFS):
    text = read_attr(os.path.join(devices_dir(sysfs), str(dev_id), "size"))
    return _int_or_none(text)


def client_addr(dev_id, sysfs=SYSFS):
    """The kernel client instance of a mapping as Ceph lists it among the
    image's watchers ("ip:port/nonce"), or None (attribute since kernel 4.13)."""
    text = read_attr(os.path.join(devices_dir(sysfs), str(dev_id), "client_addr"))
    return text.strip() if text and text.strip() else None
