"""Kernel RBD mapping through sysfs: map, unmap, exact lookup, stable path.

No rbd CLI and no Ceph library is needed: the map request is a line written to
/sys/bus/rbd/add_single_major (or /sys/bus/rbd/add on a module loaded with
single_major=0):

    "<ip:port,ip:port> name=<id>,key=client.<id>,mount_timeout=<s>[,...] <pool> <image> [<snap>]"

The cephx key goes to the kernel keyring of the writing thread for the
duration of the write (`key=client.<id>`); only when the keyring cannot be used
is it passed inline as `secret=` -- always written from this process, never on
a command line. (The kernel keeps the add string in the root-only 0400
attribute config_info, so the keyring path also keeps it out of sysfs.)

Bounded time: `mount_timeout` makes the kernel give up on dead monitors, and
every sysfs write runs in a helper thread joined with a timeout, so the
caller is never blocked beyond its timeout even if the kernel is.

`osd_request_timeout` bounds what no caller can: I/O the kernel has sent to
OSDs that do not answer. Without it such a request waits for ever -- the
device, every process reading it, and every LVM command on the host (LVM
scans all RBD devices) with it. With it the request fails with EIO, which a
guest sees as a disk error. OSD_REQUEST_TIMEOUT (120 s) is open-iscsi's
default replacement_timeout, the time dom0's iSCSI SRs let I/O wait for a
lost target: far beyond an OSD failover (heartbeat grace 20 s plus
peering), so only a cluster that is really down fails guest I/O. The SR's
device-config `osd_timeout` changes it (0 = wait for ever). The option is
libceph's since Linux 4.11 (commit 7cc5e38f2f0b), so dom0's 4.19 has it; the
kernel sweeps requests every osdkeepalive (5 s), so a request fails between
the timeout and 5 s after it. A map is not covered in full: the kernel's add
reads the partition table before it returns, each read bounded by this
timeout, in a thread the driver waits for only `timeout` seconds.

Concurrency: map and unmap take a host-wide flock, so two callers never map
the same image twice.
"""
import collections
import errno
import os
import re
import stat
import time

from rbdsr import kernel_keyring, monaddr, proc, sysfs
from rbdsr.bounded import run_bounded
from rbdsr.config import DEFAULT_OSD_TIMEOUT
from rbdsr.hostlock import HostLock
from rbdsr.image import ImageId  # noqa: F401  (krbd.ImageId: the identity krbd matches)
from rbdsr.secret import show
from rbdsr.errors import (AuthError, ConfigError, InUseError, MapError, NotFoundError, RBDError,
                          TimeoutError_, UnreachableError)

DEV = "/dev"
# Under /dev/disk/by-id: dom0's LVM (CA-410086) scans only there, and LVM finds a path
# sm gives pvcreate/vgcreate only among the names it scanned.
STABLE_ROOT = "/dev/disk/by-id/rbdsr"
LOCK_PATH = "/run/rbdsr/krbd.lock"
DEFAULT_NS_COMPONENT = "-"

MODPROBE_TIMEOUT = 30.0
UDEV_WAIT = 10.0  # how long we let udev create /dev/rbdN before doing it ourselves
POLL = 0.05
BUSY_RETRY = 5.0  # seconds an unexplained EBUSY on unmap is retried (udev probes)
OSD_REQUEST_TIMEOUT = DEFAULT_OSD_TIMEOUT  # see the module docstring


MappedDevice = collections.namedtuple("MappedDevice", "dev_id dev_path stable_path read_only")

# pe_start on an object boundary, as on dom0. dom0's 4.19 krbd advertises minimum/optimal_io_size
# = the object size, so sm's createVG (pvcreate --metadatasize 10M, LVM's data_alignment_detection)
# puts pe_start at 12 MiB; 5.1+ advertise the alloc_size map option instead (64 KiB by default):
# pe_start lands at 11 MiB and every 4 MiB request through an LV spans two RADOS objects.
# alloc_size = 4 MiB (RBDSR's object size; the kernel lowers it to a smaller object size) gives
# them 4.19's hints. It also sets the discard granularity: 5.1+ then skip discards, or the ends
# of discards, not covering whole 4 MiB units (4.19 zeroed such ranges); RBDSR's own discard of
# a deleted SR is whole objects, and sm's LVM issues none (issue_discards = 0).
ALIGN_BYTES = 4 << 20


# ---------------------------------------------------------------- validation

# Checked here, where the sysfs line is built, whatever the caller validated:
# the line is split on whitespace, the options on ',' and '='.
_FSID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def _check_name(what, value, allow_empty=False, option=False):
    if value is None or value == "":
        if allow_empty:
            return
        raise ConfigError("the %s name is empty" % what)
    if not isinstance(value, str):
        raise ConfigError("the %s name is not text" % what)
    bad = [c for c in value if c.isspace() or c in "/\0" or ord(c) < 32 or ord(c) >= 0x7F]
    if option:
        bad += [c for c in value if c in ",="]  # it goes into the option list
    if bad or value in (".", ".."):
        raise ConfigError("the %s name %s cannot be mapped (no whitespace, '/', control characters%s)"
                          % (what, show(value), ", ',' or '='" if option else ""))


def _check_fsid(fsid):
    if fsid is not None and not (isinstance(fsid, str) and _FSID_RE.match(fsid)):
        raise ConfigError("cluster fsid %s is not a uuid" % show(fsid))


def validate(image_id):
    _check_name("pool", image_id.pool)
    _check_name("namespace", image_id.namespace, allow_empty=True, option=True)
    _check_name("image", image_id.image)
    _check_name("snapshot", image_id.snap)
    _check_fsid(image_id.fsid)
    if "@" in image_id.image:
        raise ConfigError("the image name %s contains '@'" % show(image_id.image))
    if image_id.namespace == DEFAULT_NS_COMPONENT:
        raise ConfigError("the namespace name %r is reserved by RBDSR" % DEFAULT_NS_COMPONENT)


_CEPHX_ID_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _check_cephx_id(cephx_id):
    if not cephx_id or any(c not in _CEPHX_ID_OK for c in cephx_id):
        raise ConfigError("the cephx id %r is not valid (letters, digits, '.', '_', '-')" % (cephx_id,))


# ---------------------------------------------------------------- monitors

def resolve_monitors(monitors, timeout=10.0, resolver=None):
    """"ip:port,ip:port" for the kernel from [(host, port)] or ["host[:port]"]
    (rbdsr.monaddr: names resolved within `timeout`, DNSError when they do not)."""
    return monaddr.format_list(monaddr.resolve(monaddr.as_pairs(monitors), timeout, resolver))


# ---------------------------------------------------------------- add string

def build_options(cephx_id, mount_timeout, read_only=False, fsid=None, namespace="",
                  use_keyring=True, key=None, extra=None, osd_timeout=None):
    """The comma-separated option list. With use_keyring=False the result holds
    the key: the caller must treat it as a secret."""
    _check_cephx_id(cephx_id)
    _check_fsid(fsid)
    _check_name("namespace", namespace, allow_empty=True, option=True)
    opts = ["name=%s" % cephx_id]
    if key is not None:
        if use_keyring:
            opts.append("key=%s" % kernel_keyring.description(cephx_id))
        else:
            opts.append("secret=%s" % (key.reveal() if hasattr(key, "reveal") else key))
    opts.append("mount_timeout=%d" % max(1, int(mount_timeout)))
    if osd_timeout:
        opts.append("osd_request_timeout=%d" % max(1, int(osd_timeout)))
    if fsid:
        opts.append("fsid=%s" % fsid)
    if namespace:
        opts.append("_pool_ns=%s" % namespace)
    if read_only:
        opts.append("ro")
    for o in extra or ():
        if not o or "," in o or any(c.isspace() for c in o) or o.split("=")[0] in ("secret", "key", "name"):
            raise ConfigError("invalid extra map option %r" % (o,))
        opts.append(o)
    return ",".join(opts)


def build_add_string(mon_addrs, options, image_id):
    """The line written to /sys/bus/rbd/add*: "<mons> <options> <pool> <image> [<snap>]".
    Each part is checked for whitespace here, the last point before the kernel."""
    validate(image_id)
    parts = [mon_addrs, options, image_id.pool, image_id.image]
    if image_id.snap != sysfs.HEAD_SNAP:
        parts.append(image_id.snap)
    for part in parts:
        if not part or any(c.isspace() or ord(c) < 0x20 for c in part):
            # the options may hold the key (secret=): never show them
            raise ConfigError("refusing a map request with whitespace or control characters in a field")
    return " ".join(parts)


# ---------------------------------------------------------------- lookup

def find_mapped(image_id, sysfs_root=sysfs.SYSFS):
    """Device id of image_id if mapped on this host, else None (exact match).

    With image_id.fsid None, more than one match (same names in two clusters)
    is refused rather than guessed.
    """
    hits = [i.dev_id for i in sysfs.list_mapped(sysfs_root) if sysfs.identity_matches(i, image_id)]
    if len(hits) > 1 and image_id.fsid is None:
        raise MapError("%s is mapped from %d clusters (%s); the cluster fsid is needed to choose"
                       % (image_id.spec(), len(hits), ", ".join("rbd%d" % h for h in hits)))
    return hits[0] if hits else None


def stable_path(image_id, root=STABLE_ROOT):
    """/dev/disk/by-id/rbdsr/<pool>/<namespace or '-'>/<image>[@snap]: the same on every host."""
    validate(image_id)
    name = image_id.image if image_id.snap == sysfs.HEAD_SNAP else image_id.image + "@" + image_id.snap
    return os.path.join(root, image_id.pool, image_id.namespace or DEFAULT_NS_COMPONENT, name)


def dev_path(dev_id, dev=DEV):
    return os.path.join(dev, sysfs.block_name(dev_id))


# ---------------------------------------------------------------- host lock

# ---------------------------------------------------------------- module

def ensure_module(sysfs_root=sysfs.SYSFS, timeout=MODPROBE_TIMEOUT):
    """Load the rbd module (modprobe in a subprocess, bounded) if /sys/bus/rbd is missing."""
    if os.path.isdir(sysfs.rbd_bus(sysfs_root)):
        return
    try:
        res = proc.run(["modprobe", "rbd"], timeout)
    except TimeoutError_:
        raise MapError("modprobe rbd did not finish within %.0f s" % timeout)
    except RBDError as e:
        raise MapError("cannot load the rbd kernel module: %s" % e)
    if res.rc != 0 or not os.path.isdir(sysfs.rbd_bus(sysfs_root)):
        raise MapError("cannot load the rbd kernel module (modprobe rbd: %s)"
                       % ((res.err or "").strip() or "exit %d" % res.rc))


def _bus_file(sysfs_root, op):
    bus = sysfs.rbd_bus(sysfs_root)
    single = os.path.join(bus, op + "_single_major")
    return single if os.path.exists(single) else os.path.join(bus, op)


def _write_sysfs(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(errno.EIO, "short write")
    finally:
        os.close(fd)


# ---------------------------------------------------------------- map

_KEYRING_UNUSABLE = (errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EDQUOT, errno.EOPNOTSUPP)


def _map_error(e, image_id, timeout):
    spec = image_id.spec()
    code = e.errno
    if code == errno.ENOENT:
        return NotFoundError("cannot map %s: the pool, namespace or image does not exist" % spec)
    if code in (errno.EACCES, errno.EPERM, getattr(errno, "EKEYREJECTED", -1)):
        return AuthError("cannot map %s: Ceph refused the credentials (check the cephx id, key and caps)"
                         % spec)
    if code == errno.ETIMEDOUT:
        hint = " (or the cluster is not the one with fsid %s)" % image_id.fsid if image_id.fsid else ""
        return UnreachableError("cannot map %s: no Ceph monitor answered within %.0f s%s" % (spec, timeout, hint))
    if code == errno.ENXIO:
        return MapError("cannot map %s: the image uses features this kernel does not support "
                        "(disable exclusive-lock, object-map, fast-diff, deep-flatten)" % spec)
    if code == errno.EINVAL:
        return MapError("cannot map %s: the kernel rejected the map request (see dmesg)" % spec)
    if code == getattr(errno, "ENOKEY", -1):
        return MapError("cannot map %s: the kernel did not find the cephx key in the keyring" % spec)
    return MapError("cannot map %s: %s (see dmesg)" % (spec, os.strerror(code) if code else "error"))


def _do_map_write(add_path, line, cephx_id, key, use_keyring):
    """Runs in the writer thread: key in this thread's keyring, one write, key gone."""
    if key is not None and use_keyring:
        with kernel_keyring.TemporaryKey(cephx_id, key):
            _write_sysfs(add_path, line.encode())
    else:
        _write_sysfs(add_path, line.encode())


def keyring_problem(cephx_id, key):
    """Why the kernel keyring cannot carry the key (then the key goes inline as
    secret=), or None when it can: a throwaway thread-keyring add, bounded."""
    if not kernel_keyring.available():
        return "no add_key/keyctl on this host"

    def probe():
        try:
            serial = kernel_keyring.add_ceph_key(cephx_id, key)
        except OSError as e:
            if e.errno in _KEYRING_UNUSABLE:
                return "add_key: %s" % os.strerror(e.errno)
            raise MapError("the kernel keyring refused the cephx key: %s" % os.strerror(e.errno))
        kernel_keyring.remove_key(serial)
        return None

    return run_bounded(probe, 5.0, "kernel keyring probe")


def _no_log(msg):
    pass


def map_image(image_id, monitors, creds, read_only=False, timeout=60.0,
              extra_options=None, use_keyring=None, log=None, sysfs_root=sysfs.SYSFS, dev=DEV,
              stable_root=STABLE_ROOT, lock_path=LOCK_PATH, osd_timeout=OSD_REQUEST_TIMEOUT):
    """Map image_id (idempotent) and return MappedDevice.

    monitors: [(host, port)] or ["host[:port]"]; creds: rbdsr.credentials.
    Credentials (key None for a cluster without cephx). use_keyring: None =
    the kernel keyring when usable, else the key goes inline as secret= --
    said in `log` (never with the key); False forces secret=, True the keyring.
    osd_timeout: the map's osd_request_timeout (0/None: none).
    Everything is bounded by `timeout` seconds.
    """
    log = log or _no_log
    cephx_id, key = creds.cephx_id, creds.key
    validate(image_id)
    _check_cephx_id(cephx_id)
    deadline = time.monotonic() + timeout
    ensure_module(sysfs_root, min(MODPROBE_TIMEOUT, timeout))
    with HostLock(lock_path, max(1.0, deadline - time.monotonic()), "another RBD map/unmap"):
        existing = find_mapped(image_id, sysfs_root)
        if existing is not None:
            if sysfs.is_read_only(existing, sysfs_root) and not read_only:
                raise MapError("%s is already mapped read-only as rbd%d; unmap it first to map it read-write"
                               % (image_id.spec(), existing))
            return _finish(existing, image_id, deadline, sysfs_root, dev, stable_root)
        mon_addrs = resolve_monitors(monitors, max(1.0, deadline - time.monotonic()))
        if key is not None and use_keyring is None:
            problem = keyring_problem(cephx_id, key)
            use_keyring = problem is None
            if problem:
                log("RBDSR: kernel keyring unusable (%s): the key of %s goes inline (secret=) in the "
                    "root-only map request" % (problem, creds.entity))
        remaining = deadline - time.monotonic()
        if remaining < 2:
            raise TimeoutError_("no time left to map %s" % image_id.spec())
        # The kernel gives up on monitors a little before we stop waiting for it.
        mount_timeout = max(1, int(remaining) - 1)
        before = set(i.dev_id for i in sysfs.list_mapped(sysfs_root))
        add_path = _bus_file(sysfs_root, "add")
        line = build_add_string(mon_addrs, build_options(
            cephx_id, mount_timeout, read_only, image_id.fsid, image_id.namespace, bool(use_keyring), key,
            extra_options, osd_timeout), image_id)
        try:
            run_bounded(lambda: _do_map_write(add_path, line, cephx_id, key, bool(use_keyring)),
                         remaining, "mapping %s" % image_id.spec())
        except OSError as e:
            raise _map_error(e, image_id, timeout)
        finally:
            line = None  # drop our reference to a string that may hold the key
        dev_id = find_mapped(image_id, sysfs_root)
        if dev_id is None:
            # Not expected: the kernel took the request but shows no such device.
            new = [i for i in sysfs.list_mapped(sysfs_root) if i.dev_id not in before]
            released = _release_unmatched(new, image_id, sysfs_root, dev)
            raise MapError("the kernel accepted the map of %s but no matching device appeared (new: %s%s)"
                           % (image_id.spec(), ", ".join("rbd%d" % i.dev_id for i in new) or "none",
                              "; unmapped again" if released else ""))
        try:
            return _finish(dev_id, image_id, deadline, sysfs_root, dev, stable_root)
        except RBDError:
            # Leave no half-made mapping behind (nothing can have opened it yet).
            try:
                unmap_device(dev_id, False, 10.0, sysfs_root, dev, image_id.spec())
            except RBDError:
                pass
            raise


def _release_unmatched(new, image_id, sysfs_root, dev):
    """Unmap the devices our own write made (same pool and image name, under
    the host lock, nothing can have opened them) that find_mapped did not
    match, e.g. a cluster fsid or namespace the kernel reports differently."""
    released = False
    for info in new:
        if info.pool != image_id.pool or info.image != image_id.image:
            continue
        try:
            unmap_device(info.dev_id, False, 10.0, sysfs_root, dev, image_id.spec())
            released = True
        except RBDError:
            try:
                unmap_device(info.dev_id, True, 10.0, sysfs_root, dev, image_id.spec())
                released = True
            except RBDError:
                pass
    return released


def _finish(dev_id, image_id, deadline, sysfs_root, dev, stable_root):
    node = wait_for_node(dev_id, max(0.5, deadline - time.monotonic()), sysfs_root, dev)
    link = _make_stable_link(image_id, node, stable_root)
    return MappedDevice(dev_id, node, link, sysfs.is_read_only(dev_id, sysfs_root))


def _udev_running():
    return os.path.exists("/run/udev/control")


def wait_for_node(dev_id, timeout, sysfs_root=sysfs.SYSFS, dev=DEV, udev=None):
    """Wait for /dev/rbdN with the right major:minor and return its path.

    udev normally creates it; we wait up to UDEV_WAIT (bounded by timeout) and
    then create it ourselves from /sys/block/rbdN/dev. A node with the same
    device number is exactly what udev would make, so a slow or absent udev
    cannot fail an attach; a stale node with another number is replaced.
    """
    path = dev_path(dev_id, dev)
    deadline = time.monotonic() + timeout
    devnum = None
    while devnum is None:
        devnum = sysfs.block_devnum(dev_id, sysfs_root)
        if devnum is None:
            if time.monotonic() >= deadline:
                raise TimeoutError_("/sys/block/rbd%d did not appear within %.0f s" % (dev_id, timeout))
            time.sleep(POLL)
    want = os.makedev(*devnum)
    if udev is None:
        udev = _udev_running()
    udev_deadline = time.monotonic() + (min(UDEV_WAIT, timeout) if udev else 0)
    while True:
        try:
            st = os.stat(path)
            if stat.S_ISBLK(st.st_mode) and st.st_rdev == want:
                return path
        except OSError:
            pass
        if time.monotonic() >= udev_deadline:
            break
        time.sleep(POLL)
    # Make the node ourselves, atomically (a rename replaces a stale node).
    tmp = "%s.rbdsr-%d" % (path, os.getpid())
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.mknod(tmp, stat.S_IFBLK | 0o660, want)
        os.rename(tmp, path)
    except OSError as e:
        raise MapError("cannot create the device node %s: %s" % (path, e.strerror))
    return path


def _make_stable_link(image_id, node, stable_root):
    link = stable_path(image_id, stable_root)
    d = os.path.dirname(link)
    try:
        if not os.path.isdir(d):
            os.makedirs(d, 0o755)
        if os.path.islink(link) and os.readlink(link) == node:
            return link
        tmp = "%s.rbdsr-%d" % (link, os.getpid())
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(node, tmp)
        os.rename(tmp, link)
    except OSError as e:
        raise MapError("cannot create the stable device path %s: %s" % (link, e.strerror))
    return link


def _remove_stable_link(image_id, node, stable_root):
    link = stable_path(image_id, stable_root)
    try:
        if os.path.islink(link) and os.readlink(link) == node:
            os.unlink(link)
    except OSError:
        return
    # Remove now-empty directories up to (not including) the root.
    d = os.path.dirname(link)
    while d.startswith(stable_root.rstrip("/") + "/"):
        try:
            os.rmdir(d)
        except OSError:
            break
        d = os.path.dirname(d)


# ---------------------------------------------------------------- unmap

def busy_reason(dev_id, sysfs_root=sysfs.SYSFS, dev=DEV):
    """Why rbdN is busy ("held by dm-3 (VG-LV)", "open exclusively") or None.

    Non-exclusive openers are not visible here; the kernel refuses their
    unmap with EBUSY, which unmap() reports the same way.
    """
    hs = sysfs.holders(dev_id, sysfs_root)
    if hs:
        return "held by " + ", ".join(hs)
    try:
        fd = os.open(dev_path(dev_id, dev), os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.EBUSY:
            return "open exclusively (mounted or claimed)"
        return None
    os.close(fd)
    return None


def unmap_device(dev_id, force=False, timeout=60.0, sysfs_root=sysfs.SYSFS, dev=DEV, what=None):
    """Unmap rbdN (idempotent). Busy → InUseError unless force."""
    what = what or "rbd%d" % dev_id
    if not os.path.isdir(os.path.join(sysfs.devices_dir(sysfs_root), str(dev_id))):
        return False
    if not force:
        reason = busy_reason(dev_id, sysfs_root, dev)
        if reason:
            raise InUseError("cannot unmap %s (rbd%d): the device is %s" % (what, dev_id, reason))
    data = ("%d force" % dev_id) if force else str(dev_id)
    deadline = time.monotonic() + timeout
    # udev's probes (blkid after a change event) open the device briefly; an
    # EBUSY with no holder is retried for a few seconds before it counts.
    busy_until = time.monotonic() + min(BUSY_RETRY, timeout / 2.0)
    while True:
        try:
            run_bounded(lambda: _write_sysfs(_bus_file(sysfs_root, "remove"), data.encode()),
                         max(1.0, deadline - time.monotonic()), "unmapping %s" % what)
            break
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            if e.errno != errno.EBUSY:
                raise MapError("cannot unmap %s (rbd%d): %s" % (what, dev_id, os.strerror(e.errno)))
            reason = busy_reason(dev_id, sysfs_root, dev)
            if reason or time.monotonic() >= busy_until:
                raise InUseError("cannot unmap %s (rbd%d): the device is %s"
                                 % (what, dev_id, reason or "open"))
            time.sleep(0.2)
    # Without udev nobody removes the node; a stale node would be harmless
    # (wait_for_node checks numbers) but untidy.
    if not _udev_running():
        try:
            os.unlink(dev_path(dev_id, dev))
        except OSError:
            pass
    return True


def unmap(image_id, force=False, timeout=60.0, sysfs_root=sysfs.SYSFS, dev=DEV,
          stable_root=STABLE_ROOT, lock_path=LOCK_PATH):
    """Unmap image_id if mapped (idempotent); returns True when something was unmapped."""
    validate(image_id)
    deadline = time.monotonic() + timeout
    with HostLock(lock_path, timeout, "another RBD map/unmap"):
        dev_id = find_mapped(image_id, sysfs_root)
        if dev_id is None:
            _remove_stale_link(image_id, stable_root)
            return False
        node = dev_path(dev_id, dev)
        done = unmap_device(dev_id, force, max(1.0, deadline - time.monotonic()), sysfs_root, dev,
                            image_id.spec())
        _remove_stable_link(image_id, node, stable_root)
        return done


def _remove_stale_link(image_id, stable_root):
    """Drop our stable link when it points at a device that is not this image."""
    link = stable_path(image_id, stable_root)
    if os.path.islink(link):
        _remove_stable_link(image_id, os.readlink(link), stable_root)


def image_id_from_config(cfg, fsid=None, snap=sysfs.HEAD_SNAP):
    """ImageId of a validated rbdsr.config.TargetConfig."""
    if not cfg.image:
        raise ConfigError("no image (SCSIid) given", key="ConfigSCSIid")
    return ImageId(fsid, cfg.pool, cfg.namespace, cfg.image, snap)


def kernel_has_alloc_size(release=None):
    """krbd's alloc_size map option exists from Linux 5.1 (dom0's 4.19 has none)."""
    nums = []
    for part in (release or os.uname().release).split("-")[0].split(".")[:2]:
        m = re.match(r"\d+", part)
        nums.append(int(m.group(0)) if m else 0)
    return tuple(nums) >= (5, 1)


def alignment_options(release=None):
    """Map options giving the device 4.19's io hints (see ALIGN_BYTES)."""
    return ["alloc_size=%d" % ALIGN_BYTES] if kernel_has_alloc_size(release) else []


def map_from_config(cfg, creds, fsid=None, read_only=False, snap=sysfs.HEAD_SNAP, timeout=None, log=None):
    """map_image() for a TargetConfig and the operation's Credentials."""
    return map_image(image_id_from_config(cfg, fsid, snap), cfg.monitors, creds, read_only=read_only,
                     timeout=cfg.timeout if timeout is None else timeout, log=log,
                     extra_options=alignment_options(),
                     osd_timeout=getattr(cfg, "osd_timeout", OSD_REQUEST_TIMEOUT))
