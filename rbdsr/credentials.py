"""The one step that decides which cephx identity and key an operation uses.

`resolve(cfg, fetch=None)` turns a validated TargetConfig into `Credentials`
(cephx id + Secret key), once per operation:

  key       chappassword / chappassword_secret is a cephx key
  keyring   keyring= (or chappassword naming a keyring file; that path is
            treated as secret and never printed: it may be a password the admin
            typed in the wrong mode)
  ssh       auth=ssh: `fetch()` (the SSH backend) returns a least-privilege
            user's key read over SSH; the SSH login never leaves the backend
  none      no key at all (a cluster without cephx)

Every consumer takes the resulting object: the librbd backend (conf_set key),
the kernel map (rbdsr.krbd: kernel keyring, or inline `secret=` when the
keyring is unusable), block-rbd (rbdsr.hotplug) and the HA config
(`ha_device_config`), which carries this key, never the SSH password.
"""
import os

from rbdsr.errors import AuthError, ConfigError
from rbdsr.secret import Secret, is_cephx_key, read_keyring

# Where block-rbd and the Ceph tools look for a keyring when none is named.
DEFAULT_KEYRINGS = ("/etc/ceph/ceph.{entity}.keyring", "/etc/ceph/ceph.keyring", "/etc/ceph/keyring")

# The device-config fields attach-from-config needs (plus sm's own multipath
# fields, added by the driver). Anything else -- SSH login, secret uuids,
# keyring paths, installer switches -- stays out of the HA config.
HA_FIELDS = ("target", "port", "rbd", "targetIQN", "SCSIid", "timeout")


class Credentials(object):
    """A cephx identity and its key (Secret, or None for a cluster without auth).

    `source` says where the key came from, for log lines; it never holds a
    key or a path that came from a secret field."""

    __slots__ = ("cephx_id", "key", "source")

    def __init__(self, cephx_id, key, source):
        if key is not None and not isinstance(key, Secret):
            raise TypeError("Credentials.key is a Secret")
        self.cephx_id = cephx_id
        self.key = key
        self.source = source

    @property
    def entity(self):
        return "client." + self.cephx_id

    def __repr__(self):
        return "Credentials(%s, key %s, from %s)" % (
            self.entity, "<secret>" if self.key is not None else "none", self.source)


def from_keyring(cephx_id, path, name=None):
    """Credentials from the keyring file at `path` (printed as `name` when given)."""
    key = read_keyring(path, "client." + cephx_id, name=name)
    return Credentials(cephx_id, key, "keyring %s" % (name or path))


def resolve(cfg, fetch=None):
    """Credentials for a validated TargetConfig. In SSH mode `fetch` is the SSH
    backend's fetch_credentials (called once, here)."""
    if cfg.auth_mode == "ssh":
        if fetch is None:
            raise AuthError("auth=ssh: the key of %s can only be fetched over SSH" % cfg.entity)
        creds = fetch()
        if not isinstance(creds, Credentials) or creds.key is None or not is_cephx_key(creds.key):
            raise AuthError("auth=ssh: no usable cephx key was fetched for %s" % cfg.entity)
        return creds
    if cfg.key is not None:
        return Credentials(cfg.cephx_id, cfg.key, "device-config")
    if cfg.keyring:
        name = "named in %s" % cfg.keyring_field if cfg.keyring_field != "keyring" else None
        return from_keyring(cfg.cephx_id, cfg.keyring, name=name)
    return Credentials(cfg.cephx_id, None, "none (cluster without cephx)")


def find_keyring(cephx_id, named=None, conf_keyring=None):
    """Credentials from the first keyring holding client.<id>'s key: `named`
    (must work), else /etc/ceph/ceph.client.ID.keyring, ceph.conf's keyring
    setting, /etc/ceph/ceph.keyring, /etc/ceph/keyring (block-rbd's search)."""
    entity = "client." + cephx_id
    if named:
        return from_keyring(cephx_id, named)
    candidates = [DEFAULT_KEYRINGS[0].format(entity=entity)]
    for path in (conf_keyring or "").split(","):
        path = path.strip().replace("$cluster", "ceph").replace("$name", entity).replace("$id", cephx_id)
        if path:
            candidates.append(path)
    candidates += list(DEFAULT_KEYRINGS[1:])
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            return from_keyring(cephx_id, path)
        except ConfigError:
            continue
    raise ConfigError("no keyring with a key for %s: looked in %s; give keyring=PATH in the target"
                      % (entity, ", ".join(candidates)))


def ha_device_config(dconf, creds, extra=None):
    """The device-config of an HA (attach-from-config) call: what the map needs
    and nothing more -- the cephx user and key (never the SSH login or
    password, never a XAPI secret uuid, which HA start-up cannot read)."""
    out = dict((k, dconf[k]) for k in HA_FIELDS if dconf.get(k) is not None)
    out["auth"] = "cephx"
    out["chapuser"] = creds.cephx_id
    if creds.key is not None:
        out["chappassword"] = creds.key.reveal()
    out.update(extra or {})
    return out
