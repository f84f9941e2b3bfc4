"""The image administration interface both backends implement, and the
parsing of Ceph's JSON answers they share (validated: unexpected JSON is a
CephError, never a KeyError traceback)."""
import json
import re

from rbdsr.config import validate_name
from rbdsr.image import spec
from rbdsr.errors import CephError, ConfigError, InUseError, NotFoundError

OWNER_META_KEY = "rbdsr.sr_uuid"

# librbd feature bits -> the names `rbd info` prints.
FEATURE_NAMES = [
    (1 << 0, "layering"),
    (1 << 1, "striping"),
    (1 << 2, "exclusive-lock"),
    (1 << 3, "object-map"),
    (1 << 4, "fast-diff"),
    (1 << 5, "deep-flatten"),
    (1 << 6, "journaling"),
    (1 << 7, "data-pool"),
    (1 << 8, "operations"),
    (1 << 9, "migrating"),
    (1 << 10, "non-primary"),
]
LAYERING = 1
_META_KEY_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_META_VALUE_RE = re.compile(r"\A[\x20-\x7e]{1,256}\Z")


def feature_names(bits):
    return sorted(name for bit, name in FEATURE_NAMES if bits & bit)


class ImageInfo(object):
    """An image as the backends report it. list_images fills name and size only."""

    __slots__ = ("name", "size", "features", "parent", "watchers")

    def __init__(self, name, size, features=None, parent=None, watchers=None):
        self.name = name
        self.size = size
        self.features = features
        self.parent = parent
        self.watchers = watchers

    def as_dict(self):
        return dict((k, getattr(self, k)) for k in self.__slots__)

    def __eq__(self, other):
        return isinstance(other, ImageInfo) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "ImageInfo(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.as_dict().items()))


def parent_spec(pool, namespace, image, snap):
    """'pool/[ns/]image@snap' - one spelling for both backends."""
    return spec(pool, namespace, image, snap)


def image_path(pool, namespace, name):
    return spec(pool, namespace, name)


# -- validated access to Ceph's JSON ----------------------------------------

def load_json(text, what):
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        raise CephError("Ceph answered %s with something that is not JSON" % what)


def field(obj, name, kind, what):
    """obj[name], checked to be of `kind` (a type or tuple); CephError otherwise."""
    if not isinstance(obj, dict) or name not in obj:
        raise CephError("unexpected answer from Ceph to %s: no %r" % (what, name))
    value = obj[name]
    if kind is int and isinstance(value, bool):
        raise CephError("unexpected answer from Ceph to %s: %r is not a number" % (what, name))
    if not isinstance(value, kind):
        raise CephError("unexpected answer from Ceph to %s: %r has the wrong type" % (what, name))
    return value


def expect_list(value, what):
    if not isinstance(value, list):
        raise CephError("unexpected answer from Ceph to %s: expected a list" % what)
    return value


def parse_fsid(obj):
    return field(obj, "fsid", str, "fsid")


def parse_mon_dump(obj):
    """Monitor v1 addresses ("ip:port") from `mon dump` JSON (the kernel client speaks msgr v1)."""
    what = "mon dump"
    addrs = []
    for mon in expect_list(field(obj, "mons", list, what), what):
        public = field(mon, "public_addrs", dict, what)
        for entry in expect_list(field(public, "addrvec", list, what), what):
            if field(entry, "type", str, what) == "v1":
                addr = field(entry, "addr", str, what)
                if addr not in addrs:
                    addrs.append(addr)
    if not addrs:
        raise CephError("the monmap lists no msgr v1 monitor address (the kernel client needs one)")
    return addrs


def parse_rbd_pools(obj):
    """Names of pools with the rbd application from `osd pool ls detail` JSON."""
    what = "osd pool ls detail"
    names = []
    for pool in expect_list(obj, what):
        apps = field(pool, "application_metadata", dict, what)
        if "rbd" in apps:
            names.append(field(pool, "pool_name", str, what))
    return sorted(names)


def parse_capacity(df, quota, pool):
    """(total, avail) bytes for a pool: quota if set, else max_avail + stored."""
    what = "df"
    for entry in expect_list(field(df, "pools", list, what), what):
        if field(entry, "name", str, what) == pool:
            stats = field(entry, "stats", dict, what)
            stored = field(stats, "stored", int, what)
            max_avail = field(stats, "max_avail", int, what)
            break
    else:
        raise NotFoundError("pool %s does not exist" % pool)
    quota_bytes = field(quota, "quota_max_bytes", int, "osd pool get-quota")
    if quota_bytes > 0:
        return quota_bytes, max(0, min(quota_bytes - stored, max_avail))
    return stored + max_avail, max_avail


class Backend(object):
    """Image administration. Every call is bounded by cfg.timeout."""

    name = "base"

    def __init__(self, cfg):
        self.cfg = cfg

    # cluster
    def fsid(self):
        raise NotImplementedError

    def monitors(self):
        raise NotImplementedError

    def list_pools(self):
        raise NotImplementedError

    def pool_capacity(self, pool):
        raise NotImplementedError

    # images
    def list_images(self, pool, namespace=""):
        raise NotImplementedError

    def image_info(self, pool, namespace, name):
        raise NotImplementedError

    def create_image(self, pool, namespace, name, size):
        raise NotImplementedError

    def _resize(self, pool, namespace, name, size):
        raise NotImplementedError

    def _remove(self, pool, namespace, name):
        raise NotImplementedError

    def get_meta(self, pool, namespace, name, key):
        raise NotImplementedError

    def written_extents(self, pool, namespace, name):
        """[(offset, length)] of every extent of the image ever written (Ceph's
        own record: objects that exist), whatever the data reads as."""
        raise NotImplementedError

    def lockers(self, pool, namespace, name):
        """[(locker, cookie, address)] of the image's advisory (rbd lock) locks."""
        raise NotImplementedError

    def _lock_add(self, pool, namespace, name, cookie):
        """Take an exclusive advisory lock; InUseError when anyone holds one."""
        raise NotImplementedError

    def _lock_break(self, pool, namespace, name, locker, cookie):
        raise NotImplementedError

    def blocklist_add(self, addr, expire=None):
        """Blocklist one client instance 'ip:port/nonce' (rbdsr.fence checks it)."""
        raise NotImplementedError

    def lock_image(self, pool, namespace, name, cookie):
        """Hold the image's exclusive advisory lock under `cookie`: one holder
        in the whole cluster, whichever host or backend asks."""
        self._lock_add(pool, namespace, name, cookie)

    def unlock_image(self, pool, namespace, name, cookie):
        """Release every lock held under `cookie` (ours, also one a killed
        earlier call of ours left); returns how many were released."""
        n = 0
        for locker, c, _addr in self.lockers(pool, namespace, name):
            if c == cookie:
                self._lock_break(pool, namespace, name, locker, cookie)
                n += 1
        return n

    def set_meta(self, pool, namespace, name, key, value):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # shared checks: names reach the CLIs and librbd only once validated
    @staticmethod
    def check_names(pool, namespace="", name=None):
        validate_name("pool", pool, "targetIQN")
        if namespace:
            validate_name("namespace", namespace, "targetIQN")
        if name is not None:
            validate_name("image", name, "SCSIid")

    @staticmethod
    def check_meta(key, value=None):
        if not isinstance(key, str) or not _META_KEY_RE.match(key):
            raise ConfigError("image metadata key %r is not allowed" % (key,))
        if value is not None and (not isinstance(value, str) or not _META_VALUE_RE.match(value)):
            raise ConfigError("image metadata value for %s must be 1-256 printable ASCII characters" % key)

    # shared policy: never shrink, delete only what is provably ours
    def grow_image(self, pool, namespace, name, size):
        """Grow to `size` bytes; a smaller size is refused, the same size is a no-op.
        Returns the size after the call."""
        if not isinstance(size, int) or size <= 0:
            raise ConfigError("image size must be a positive number of bytes")
        current = self.image_info(pool, namespace, name).size
        if size < current:
            raise ConfigError("refusing to shrink image %s from %d to %d bytes"
                              % (image_path(pool, namespace, name), current, size))
        if size > current:
            self._resize(pool, namespace, name, size)
        return size

    def remove_image(self, pool, namespace, name, owner):
        """Remove an image only when its owner tag equals `owner` and nobody has it open."""
        path = image_path(pool, namespace, name)
        if not owner:
            raise InUseError("refusing to remove image %s: no owner given" % path)
        tag = self.get_meta(pool, namespace, name, OWNER_META_KEY)
        if tag != owner:
            raise InUseError("refusing to remove image %s: it is not tagged %s=%s"
                             % (path, OWNER_META_KEY, owner))
        info = self.image_info(pool, namespace, name)
        if info.watchers:
            raise InUseError("refusing to remove image %s: it is in use by %s"
                             % (path, ", ".join(info.watchers)))
        self._remove(pool, namespace, name)
