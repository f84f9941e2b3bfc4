"""device-config -> validated `TargetConfig`.

The iSCSI wizard's fields carry the Ceph target: `target` = monitors, `port` =
6789 (the diversion port), `targetIQN` = pool[/namespace], `SCSIid` = image,
`chapuser`/`chappassword` = credentials. Extra keys are for `xe` users
(CONFIG_KEYS). Validation is pure: no DNS, no file or network access; names are
checked against Ceph's rules, narrowed to what the kernel's sysfs interface and
a shell can carry safely, so nothing validated here needs quoting to be safe
(it is quoted anyway wherever it reaches a shell).
"""
import re

from rbdsr import image as rbd_image
from rbdsr import monaddr
from rbdsr.diversion import RULE, wants_rbd
from rbdsr.errors import ConfigError
from rbdsr.secret import Secret, is_cephx_key, looks_like_key, show

DEFAULT_TIMEOUT = 30
# krbd osd_request_timeout: why 120 s is in rbdsr/krbd.py's docstring.
DEFAULT_OSD_TIMEOUT = 120
DEFAULT_SSH_CEPHX_ID = "xcpng-rbdsr"
MIN_SIZE = 64 << 20
MAX_SIZE = 1 << 50
OWNER_META_KEY = "rbdsr.sr_uuid"

CONFIG_KEYS = [
    ["target", "Ceph monitor(s), comma-separated: host, IPv4 or [IPv6], each with an optional :port (default 6789)"],
    ["port", "6789 routes this lvmoiscsi SR to RBDSR (monitor ports go in target)"],
    ["rbd", "true: an RBD SR whatever port the wizard sends"],
    ["targetIQN", "Ceph pool holding the image, optionally pool/namespace"],
    ["SCSIid", "RBD image that carries the SR (created on sr-create if absent and size is given)"],
    ["chapuser", "cephx id (auth=cephx, default admin) or SSH login on a monitor (auth=ssh)"],
    ["chappassword", "cephx key (40 base64 chars) or keyring path (auth=cephx), or SSH password (auth=ssh)"],
    ["chappassword_secret", "XAPI secret uuid holding chappassword"],
    ["auth", "cephx (default when a key or keyring is given) or ssh (fetch a least-privilege key over SSH)"],
    ["cephx_id", "cephx id to use (overrides chapuser for cephx; the key to fetch for ssh, default xcpng-rbdsr)"],
    ["keyring", "path of a keyring file holding the cephx key"],
    ["ceph_conf", "path of a ceph.conf to read (optional; monitors come from target)"],
    ["create_cephx_user", "auth=ssh: create the cephx user with caps profile rbd on the pool if missing (true/false)"],
    ["ssh_host_key", "auth=ssh: pinned SSH host key fingerprint SHA256:... (else known_hosts is used)"],
    ["ssh_known_hosts", "auth=ssh: known_hosts file to check the host key against"],
    ["ssh_host", "auth=ssh: host to log in to (default: first monitor)"],
    ["ssh_port", "auth=ssh: SSH port (default 22)"],
    ["ssh_sudo", "auth=ssh: run ceph/rbd through sudo -n on the monitor (default true)"],
    ["size", "image size for sr-create when the image does not exist (bytes, or with K/M/G/T suffix)"],
    ["timeout", "seconds for any Ceph or SSH operation (default 30)"],
    ["delete_image", "sr-delete also removes the image when it is ours (true/false, default false)"],
    ["osd_timeout", "seconds the kernel lets I/O wait for unresponsive OSDs before failing it (default 120, "
                    "0 = for ever; LVM on the whole host waits as long)"],
]

# Ceph's rules: pool, namespace and image names cannot hold '/' or '@' (the
# rbd spec separators) nor control characters; the kernel's add interface
# splits on whitespace. We accept the portable subset below.
_NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.+=-]*\Z")
MAX_NAME_LEN = {"pool": 127, "namespace": 64, "image": 96}
_CEPHX_ID_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
_SSH_USER_RE = re.compile(r"\A[a-z_][a-z0-9_.-]{0,31}\Z")
_SHA256_FP_RE = re.compile(r"\ASHA256:[A-Za-z0-9+/]{43}\Z")
_UUID_RE = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_SIZE_RE = re.compile(r"\A([0-9]{1,20})\s*([KMGTP]?)(?:i?B)?\Z", re.IGNORECASE)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_MAX_VALUE_LEN = 4096


# Every message quoting a device-config value goes through secret.show: a
# value that looks like a cephx key (pasted in the wrong field) is withheld.
_show = show


def _err(field, message, key=None):
    return ConfigError("device-config %s: %s" % (field, message), key=key)


def _field_key(field):
    return {
        "target": "ConfigTargetMissing",
        "port": "ISCSIPort",
        "targetIQN": "ConfigTargetIQNMissing",
        "SCSIid": "ConfigSCSIid",
        "chappassword_secret": "InvalidSecret",
    }.get(field, "InvalidArg")


def _raw(dconf, field, secret=False):
    """The raw string value of a field, or None; rejects non-text and control chars."""
    if field not in dconf or dconf[field] is None:
        return None
    value = dconf[field]
    key = _field_key(field)
    if not isinstance(value, str):
        raise _err(field, "must be text", key)
    if len(value) > _MAX_VALUE_LEN:
        raise _err(field, "is too long (%d characters)" % len(value), key)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _err(field, "contains control characters", key)
    return value


def validate_name(kind, value, field):
    """Check a pool / namespace / image name; return it."""
    key = _field_key(field)
    limit = MAX_NAME_LEN[kind]
    if value == "":
        raise _err(field, "%s name is empty" % kind, key)
    if looks_like_key(value):
        # a key pasted in the wrong wizard field: refuse it, never echo it
        raise _err(field, "%s name %s: a cephx key belongs in chappassword" % (kind, show(value)), key)
    if len(value) > limit:
        raise _err(field, "%s name is longer than %d characters" % (kind, limit), key)
    if "/" in value or "@" in value:
        raise _err(field, "%s name %s contains '/' or '@'" % (kind, _show(value)), key)
    if not _NAME_RE.match(value):
        raise _err(
            field,
            "%s name %s may only use letters, digits and _ . + = - (starting with a letter, digit or _)"
            % (kind, _show(value)),
            key,
        )
    return value


def validate_cephx_id(value, field):
    if value.startswith("client."):
        value = value[len("client."):]
    if not _CEPHX_ID_RE.match(value):
        raise _err(
            field,
            "cephx id %s must be 1-64 letters, digits, _ . - (optionally prefixed client.)" % _show(value),
        )
    return value


def _parse_port(text, field, key):
    if not re.match(r"\A[0-9]{1,5}\Z", text):
        raise _err(field, "port %s is not a number" % _show(text), key)
    port = int(text)
    if not 1 <= port <= 65535:
        raise _err(field, "port %d is out of range 1-65535" % port, key)
    return port


def validate_host(host, field="target"):
    """A hostname, IPv4 or IPv6 literal (without brackets); returns it normalised."""
    return monaddr.validate_host(host, "device-config " + field, _field_key(field))


def parse_monitors(text):
    """'a,b:6790,[::1]:6789' -> [(host, port), ...] (default port 6789 each)."""
    return monaddr.parse_list(text, "device-config target", "ConfigTargetMissing")


def parse_bool(text, field):
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise _err(field, "%s is not a boolean (true/false)" % _show(text))


def parse_size(text, field="size"):
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise _err(field, "%s is not a size (bytes, or a number with K/M/G/T/P)" % _show(text))
    size = int(m.group(1)) << (10 * " KMGTP".index((m.group(2) or " ").upper()))
    if size < MIN_SIZE:
        raise _err(field, "%d bytes is below the minimum of %d MiB" % (size, MIN_SIZE >> 20))
    if size > MAX_SIZE:
        raise _err(field, "%d bytes is above the maximum of %d TiB" % (size, MAX_SIZE >> 40))
    return size


def parse_timeout(text, field="timeout"):
    if not re.match(r"\A[0-9]{1,4}(\.[0-9]{1,3})?\Z", text.strip()):
        raise _err(field, "%s is not a number of seconds" % _show(text))
    value = float(text)
    if not 1 <= value <= 600:
        raise _err(field, "%s seconds is outside 1-600" % text.strip())
    return value


def parse_osd_timeout(text, field="osd_timeout"):
    """0 (never) or 10-3600 whole seconds: the krbd osd_request_timeout."""
    if not re.match(r"\A[0-9]{1,4}\Z", text.strip()):
        raise _err(field, "%s is not a whole number of seconds" % _show(text))
    value = int(text)
    if value != 0 and not 10 <= value <= 3600:
        raise _err(field, "%s seconds is outside 10-3600 (or 0 for no limit)" % text.strip())
    return value


def _abs_path(text, field):
    if not text.startswith("/") or "\x00" in text or len(text) > 1024:
        raise _err(field, "%s must be an absolute path" % _show(text))
    return text


class TargetConfig(object):
    """A validated Ceph target; build it with `from_dconf`."""

    def __init__(self):
        self.monitors = []
        self.pool = None
        self.namespace = ""
        self.image = None
        self.auth_mode = "cephx"
        self.cephx_id = "admin"
        self.key = None
        self.keyring = None
        self.keyring_field = None  # "keyring", or the secret field that named the keyring
        self.ceph_conf = None
        self.ssh_user = None
        self.ssh_password = None
        self.ssh_host = None
        self.ssh_port = 22
        self.ssh_host_key = None
        self.ssh_known_hosts = None
        self.ssh_sudo = True
        self.create_cephx_user = False
        self.size = None
        self.timeout = float(DEFAULT_TIMEOUT)
        self.delete_image = False
        self.osd_timeout = DEFAULT_OSD_TIMEOUT
        self.resolved = None  # [(ip, port)] after resolve()

    def __repr__(self):
        return "TargetConfig(monitors=%r, pool=%r, namespace=%r, image=%r, auth=%s, id=%s)" % (
            self.monitors, self.pool, self.namespace, self.image, self.auth_mode, self.cephx_id)

    @property
    def entity(self):
        return "client." + self.cephx_id

    @classmethod
    def from_dconf(cls, dconf, secret_reader=None):
        """Validate a device-config dict. Raises ConfigError (with the field's sm key)."""
        if not isinstance(dconf, dict):
            raise ConfigError("device-config must be a mapping")
        cfg = cls()

        port = _raw(dconf, "port")
        if port is not None and not wants_rbd(dconf):
            # RBDSR run directly (type rbd) on a config the hook would leave to iSCSI
            raise _err("port", "%s does not select RBDSR: give %s" % (_show(port), RULE), "ISCSIPort")

        target = _raw(dconf, "target")
        if target is None or not target.strip():
            raise _err("target", "no Ceph monitor given", "ConfigTargetMissing")
        cfg.monitors = parse_monitors(target)

        iqn = _raw(dconf, "targetIQN")
        if iqn is None or iqn == "":
            raise _err("targetIQN", "no pool given", "ConfigTargetIQNMissing")
        if iqn.count("/") > 1:
            raise _err("targetIQN", "%s: expected pool or pool/namespace" % _show(iqn), "ConfigTargetIQNMissing")
        pool, _, ns = iqn.partition("/")
        cfg.pool = validate_name("pool", pool, "targetIQN")
        if _:
            cfg.namespace = validate_name("namespace", ns, "targetIQN")

        image = _raw(dconf, "SCSIid")
        if image is not None:
            cfg.image = validate_name("image", image, "SCSIid")

        cfg._load_credentials(dconf, secret_reader)

        # optional keys: device-config key (= attribute) -> parser; absent or empty keeps the default
        for key, parse in (("ceph_conf", lambda t: _abs_path(t, "ceph_conf")), ("size", parse_size),
                           ("timeout", parse_timeout), ("delete_image", lambda t: parse_bool(t, "delete_image")),
                           ("osd_timeout", parse_osd_timeout)):
            text = _raw(dconf, key)
            if text:
                setattr(cfg, key, parse(text))
        return cfg

    def _load_credentials(self, dconf, secret_reader):
        user = _raw(dconf, "chapuser")
        password = _raw(dconf, "chappassword")
        secret_uuid = _raw(dconf, "chappassword_secret")
        if secret_uuid:
            if not _UUID_RE.match(secret_uuid):
                raise _err("chappassword_secret", "%s is not a secret uuid" % _show(secret_uuid), "InvalidSecret")
            if secret_reader is None:
                raise _err("chappassword_secret", "no way to read XAPI secrets here", "InvalidSecret")
            try:
                password = secret_reader(secret_uuid)
            except Exception as e:  # the reader is XAPI's; any failure means no secret
                raise _err("chappassword_secret", "cannot read secret %s (%s)" % (
                    secret_uuid, e.__class__.__name__), "InvalidSecret")
            if not isinstance(password, str) or not password:
                raise _err("chappassword_secret", "secret %s is empty" % secret_uuid, "InvalidSecret")
            if any(ord(c) < 0x20 for c in password):
                raise _err("chappassword_secret", "secret %s contains control characters" % secret_uuid,
                           "InvalidSecret")
        if password == "":
            password = None
        if user == "":
            user = None
        pw_field = "chappassword_secret" if secret_uuid else "chappassword"
        # The value is a secret even when it turns out to be something else.
        secret = Secret(password) if password is not None else None

        keyring = _raw(dconf, "keyring")
        if keyring:
            self.keyring = _abs_path(keyring, "keyring")
            self.keyring_field = "keyring"
        cephx_id = _raw(dconf, "cephx_id")
        if cephx_id is not None:
            cephx_id = validate_cephx_id(cephx_id, "cephx_id")

        auth = _raw(dconf, "auth")
        if auth is not None:
            auth = auth.strip().lower()
            if auth not in ("cephx", "ssh"):
                raise _err("auth", "%s is not cephx or ssh" % _show(auth))
        else:
            looks_cephx = secret is None or is_cephx_key(secret) or password.startswith("/")
            if looks_cephx or self.keyring:
                auth = "cephx"
            elif _raw(dconf, "ssh_host_key"):
                auth = "ssh"
            else:
                raise _err(pw_field, "is neither a cephx key (40 base64 characters) nor a keyring path;"
                           " to fetch a key over SSH set auth=ssh")
        self.auth_mode = auth

        if auth == "cephx":
            if user is not None:
                user = validate_cephx_id(user, "chapuser")
            self.cephx_id = cephx_id or user or "admin"
            if secret is not None:
                if password.startswith("/"):
                    # A keyring path -- or an SSH password typed without auth=ssh:
                    # from here on it is never printed (keyring_field names it instead).
                    if self.keyring:
                        raise _err(pw_field, "is a keyring path but keyring is also given")
                    if "\x00" in password or len(password) > 1024:
                        raise _err(pw_field, "is neither a cephx key nor a keyring path")
                    self.keyring = password
                    self.keyring_field = pw_field
                elif is_cephx_key(secret):
                    self.key = secret
                else:
                    raise _err(pw_field, "is not a cephx key (base64 of a 28-byte cephx secret, 40 characters)")
            for field in ("ssh_host_key", "ssh_known_hosts", "ssh_host", "ssh_port", "ssh_sudo",
                          "create_cephx_user"):
                if _raw(dconf, field):
                    raise _err(field, "only applies with auth=ssh")
            return

        # auth == ssh: chapuser/chappassword log in to a monitor.
        if user is None:
            raise _err("chapuser", "auth=ssh needs the SSH login name in chapuser")
        if not _SSH_USER_RE.match(user):
            raise _err("chapuser", "SSH user %s is not a valid login name" % _show(user))
        if secret is None:
            raise _err("chappassword", "auth=ssh needs the SSH password in chappassword")
        if self.keyring:
            raise _err("keyring", "does not apply with auth=ssh")
        self.ssh_user = user
        self.ssh_password = secret
        self.cephx_id = cephx_id or DEFAULT_SSH_CEPHX_ID
        if self.cephx_id == "admin":
            raise _err("cephx_id", "auth=ssh never fetches the admin key; name a least-privilege user")
        fp = _raw(dconf, "ssh_host_key")
        if fp:
            if not _SHA256_FP_RE.match(fp.strip()):
                raise _err("ssh_host_key", "%s is not a fingerprint like SHA256:<43 base64 characters>"
                           " (ssh-keygen -lf <host key>)" % _show(fp))
            self.ssh_host_key = fp.strip()
        text = _raw(dconf, "ssh_known_hosts")
        if text:
            self.ssh_known_hosts = _abs_path(text, "ssh_known_hosts")
        text = _raw(dconf, "ssh_host")
        if text:
            host = text.strip()
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            self.ssh_host = validate_host(host, "ssh_host")
        else:
            self.ssh_host = self.monitors[0][0]
        text = _raw(dconf, "ssh_port")
        if text:
            self.ssh_port = _parse_port(text.strip(), "ssh_port", "InvalidArg")
        text = _raw(dconf, "ssh_sudo")
        if text:
            self.ssh_sudo = parse_bool(text, "ssh_sudo")
        text = _raw(dconf, "create_cephx_user")
        if text:
            self.create_cephx_user = parse_bool(text, "create_cephx_user")

    # -- after validation ---------------------------------------------------

    def resolve(self, timeout=None):
        """Resolve monitor host names to IP addresses (bounded); sets and returns `resolved`.

        Raises ConfigError with key DNSError when a name does not resolve in time.
        """
        self.resolved = monaddr.resolve(self.monitors, self.timeout if timeout is None else timeout)
        return self.resolved

    def mon_addrs(self):
        """"ip:port,[ip6]:port" of the monitors. Needs IPs: call resolve() first
        when a monitor is given by name."""
        addrs = self.resolved
        if addrs is None:
            addrs = []
            for host, port in self.monitors:
                if monaddr.ip_or_none(host) is None:
                    raise ConfigError("monitor %s is a host name: resolve it first" % host)
                addrs.append((host, port))
        return monaddr.format_list(addrs)

    def mon_host(self):
        """mon_host for librados, pinned to msgr v1 like the kernel client: "v1:ip:port,...".
        Needs IPs: call resolve() first when a monitor is given by name."""
        return ",".join("v1:" + a for a in self.mon_addrs().split(","))

    def image_spec(self, image=None):
        """pool[/namespace]/image (rbdsr.image.spec)."""
        return rbd_image.spec(self.pool, self.namespace, image or self.image)
