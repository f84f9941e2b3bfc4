"""The target= string of an xl disk spec -> a validated `Target`.

Syntax (libxl hands everything after `target=` to us verbatim in the
backend's `params` node, commas included, which is why target= comes last):

    [rbd:]POOL[/NAMESPACE]:IMAGE[@SNAP][,OPTION=VALUE]...

A leading "rbd:" is a scheme marker and is dropped when a POOL:IMAGE pair
follows it; "rbd:IMAGE" alone therefore means pool "rbd", image IMAGE (the
two readings agree). Options:

    id=ID              cephx id (default admin; "client." prefix allowed)
    conf=PATH          ceph.conf (default /etc/ceph/ceph.conf)
    keyring=PATH       keyring (default /etc/ceph/ceph.client.ID.keyring,
                       then the ceph.conf keyring setting)
    mon=ADDR[;ADDR]    monitors, ';'-separated host[:port] / [v6]:port
                       (default: mon_host of ceph.conf)
    fsid=UUID          cluster fsid (default: ceph.conf, else asked from Ceph)
    claim=yes|no       take the cluster-wide claim (default yes; no = mode w!/r!)
    clone-from=POOL[/NS]:IMAGE@SNAP
                       create IMAGE as a clone of that snapshot when missing
    timeout=SECONDS    bound for every Ceph / kernel wait (default 60)

Names follow the RBDSR rules (rbdsr.config): letters, digits, _ . + = -.
Nothing here touches a file, the network or Ceph.
"""
import re

from rbdsr import config
from rbdsr.errors import ConfigError
from rbdsr.image import HEAD, ImageId
from rbdsr.secret import show

DEFAULT_CONF = "/etc/ceph/ceph.conf"
DEFAULT_ID = "admin"
DEFAULT_TIMEOUT = 60.0
SCHEME = "rbd:"

SYNTAX = "[rbd:]POOL[/NAMESPACE]:IMAGE[@SNAP][,id=ID][,conf=PATH][,keyring=PATH][,mon=ADDR;ADDR]" \
         "[,fsid=UUID][,claim=yes|no][,clone-from=POOL:IMAGE@SNAP][,timeout=SECONDS]"

_OPTIONS = ("id", "conf", "keyring", "mon", "fsid", "claim", "clone-from", "timeout")
_FSID_RE = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_MAX_LEN = 4096


def ImageRef(pool, namespace, image, snap=HEAD):
    """The image (or snapshot) a target names: an rbdsr.image.ImageId whose
    cluster is not known yet (block-rbd learns the fsid later)."""
    return ImageId(None, pool, namespace, image, snap)


def target_spec(ref):
    """POOL[/NS]:IMAGE[@SNAP]: how a block-rbd command line names `ref` (for
    command hints; messages use the one image spelling, ref.spec())."""
    s = ref.pool + ("/" + ref.namespace if ref.namespace else "") + ":" + ref.image
    return s + "@" + ref.snap if ref.is_snap else s


class Target(object):
    """A parsed, validated target= string. `ref` is the image (or snapshot)."""

    def __init__(self, ref):
        self.ref = ref
        self.cephx_id = DEFAULT_ID
        self.conf = DEFAULT_CONF
        self.conf_given = False
        self.keyring = None
        self.monitors = None  # [(host, port)] from mon=, else None (ceph.conf)
        self.fsid = None
        self.claim = True
        self.clone_from = None
        self.timeout = DEFAULT_TIMEOUT

    @property
    def entity(self):
        return "client." + self.cephx_id

    def default_keyring(self):
        return "/etc/ceph/ceph.%s.keyring" % self.entity

    def __repr__(self):
        return "Target(%s, id=%s)" % (self.ref.spec(), self.cephx_id)


_show = show  # one safe spelling of quoted values (withholds key-shaped text)


def _err(message):
    return ConfigError("target: %s (syntax: %s)" % (message, SYNTAX))


def _name(kind, value, what):
    try:
        return config.validate_name(kind, value, "target")
    except ConfigError as e:
        # config's message starts with "device-config target: "; keep its reason only.
        raise _err("%s: %s" % (what, str(e).split(": ", 1)[-1]))


def parse_image_spec(text, what="image", allow_snap=True, need_snap=False):
    """POOL[/NAMESPACE]:IMAGE[@SNAP] -> ImageRef."""
    if text.count(":") != 1:
        raise _err("%s %s is not POOL[/NAMESPACE]:IMAGE" % (what, _show(text)))
    left, image = text.split(":")
    pool, slash, ns = left.partition("/")
    image, at, snap = image.partition("@")
    if at and not allow_snap:
        raise _err("%s %s cannot name a snapshot" % (what, _show(text)))
    if need_snap and not at:
        raise _err("%s %s must name a snapshot (IMAGE@SNAP)" % (what, _show(text)))
    ref = ImageRef(
        _name("pool", pool, what),
        _name("namespace", ns, what) if slash else "",
        _name("image", image, what),
        _name("image", snap, what + " snapshot") if at else HEAD,
    )
    return ref


def _strip_scheme(spec):
    """Drop a leading "rbd:" when a POOL:IMAGE pair follows it."""
    if spec.startswith(SCHEME):
        rest = spec[len(SCHEME):]
        if ":" in rest:
            return rest
    return spec


def parse_target(text):
    """The target string (the backend's params) -> Target. Raises ConfigError."""
    if not isinstance(text, str):
        raise _err("not text")
    text = text.strip()
    if not text:
        raise _err("empty: name the image")
    if len(text) > _MAX_LEN:
        raise _err("longer than %d characters" % _MAX_LEN)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise _err("contains control characters")
    if any(c.isspace() for c in text):
        raise _err("contains whitespace")
    parts = text.split(",")
    spec = _strip_scheme(parts[0])
    target = Target(parse_image_spec(spec))
    seen = set()
    for opt in parts[1:]:
        key, eq, value = opt.partition("=")
        if not opt:
            raise _err("empty option (two commas in a row, or a trailing comma)")
        if not eq:
            raise _err("option %s is not KEY=VALUE" % _show(opt))
        if key not in _OPTIONS:
            raise _err("unknown option %s (known: %s)" % (_show(key), ", ".join(_OPTIONS)))
        if key in seen:
            raise _err("option %s given twice" % key)
        seen.add(key)
        if value == "":
            raise _err("option %s has an empty value" % key)
        _apply(target, key, value)
    return target


def _path(key, value):
    if not value.startswith("/") or len(value) > 1024:
        raise _err("%s=%s must be an absolute path" % (key, _show(value)))
    return value


def _apply(target, key, value):
    if key == "id":
        try:
            target.cephx_id = config.validate_cephx_id(value, "target")
        except ConfigError:
            raise _err("id=%s is not a cephx id (1-64 letters, digits, _ . -)" % _show(value))
    elif key == "conf":
        target.conf = _path(key, value)
        target.conf_given = True
    elif key == "keyring":
        target.keyring = _path(key, value)
    elif key == "mon":
        try:
            target.monitors = config.parse_monitors(value.replace(";", ","))
        except ConfigError as e:
            raise _err("mon=%s: %s" % (_show(value), str(e).split(": ", 1)[-1]))
    elif key == "fsid":
        if not _FSID_RE.match(value):
            raise _err("fsid=%s is not a cluster fsid (a uuid)" % _show(value))
        target.fsid = value.lower()
    elif key == "claim":
        low = value.lower()
        if low in ("yes", "true", "on", "1"):
            target.claim = True
        elif low in ("no", "false", "off", "0"):
            target.claim = False
        else:
            raise _err("claim=%s: use claim=yes or claim=no" % _show(value))
    elif key == "clone-from":
        if target.ref.is_snap:
            raise _err("clone-from= creates IMAGE; it cannot be used with IMAGE@SNAP")
        target.clone_from = parse_image_spec(value, "clone-from", need_snap=True)
    elif key == "timeout":
        try:
            target.timeout = config.parse_timeout(value, "target")
        except ConfigError:
            raise _err("timeout=%s is not 1-600 seconds" % _show(value))


class Mode(object):
    """The vbd's access mode as Xen's block scripts read it: `write` when the
    mode holds a 'w'; `check` (take the cluster-wide claim) unless it holds '!'."""

    __slots__ = ("text", "write", "check")

    def __init__(self, text, write, check):
        self.text = text
        self.write = write
        self.check = check

    def __repr__(self):
        return "Mode(%r)" % self.text


def parse_mode(text):
    """xenstore `mode` ("r", "w", "r!", "w!"; "ro"/"rw" accepted) -> Mode."""
    if text is None:
        raise ConfigError("the vbd has no mode in xenstore")
    text = text.strip()
    if not text or any(c not in "rwo!" for c in text):
        raise ConfigError("the vbd mode %s is not r, w, r! or w!" % _show(text))
    return Mode(text, "w" in text, "!" not in text)
