"""What block-rbd takes from ceph.conf: monitors, fsid and the keyring path.

Only these settings are read; librados reads the file itself for everything
else. ceph.conf is INI-like: "mon host", "mon_host" and "mon-host" are one
key, later sections win in the order [global] < [client] < [client.ID], and
'#' / ';' start comments.

The kernel client of dom0 (4.19) speaks only the v1 messenger, so from a
mon_host like "[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0] 10.0.0.2" we keep the
v1 addresses: (10.0.0.1, 6789), (10.0.0.2, 6789).
"""
import re

from rbdsr.errors import ConfigError

V1_PORT = 6789
V2_PORT = 3300
_MAX_BYTES = 1 << 20
_SECTION_RE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*$")
_KV_RE = re.compile(r"^\s*([A-Za-z0-9_ .-]+?)\s*=\s*(.*?)\s*$")


class CephConf(object):
    """Settings of one ceph.conf for one client entity."""

    def __init__(self, path, settings):
        self.path = path
        self._settings = settings

    def get(self, key):
        return self._settings.get(_norm(key))

    @property
    def fsid(self):
        value = self.get("fsid")
        return value.lower() if value else None

    @property
    def keyring(self):
        return self.get("keyring")

    def monitors(self):
        """v1 monitors [(host, port)] from mon_host, else from [mon.X] mon addr; [] if none."""
        text = self.get("mon_host")
        if text:
            return parse_mon_host(text, self.path)
        return list(self._settings.get("_mon_addrs", []))


def _norm(key):
    return re.sub(r"[ _-]+", "_", key.strip().lower())


def _strip_comment(value):
    for marker in (" #", " ;", "\t#", "\t;"):
        i = value.find(marker)
        if i >= 0:
            value = value[:i]
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def parse_text(text, entity, path="ceph.conf"):
    """The settings that apply to `entity` ("client.ID") from ceph.conf text."""
    layers = {"global": {}, "client": {}, entity: {}}
    mon_addrs = []
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        m = _SECTION_RE.match(line)
        if m:
            section = m.group(1).strip()
            continue
        m = _KV_RE.match(line)
        if not m or section is None:
            continue
        key, value = _norm(m.group(1)), _strip_comment(m.group(2))
        if section in layers:
            layers[section][key] = value
        elif section.startswith("mon.") and key in ("mon_addr", "public_addr") and value:
            for mon in parse_mon_host(value, path):
                if mon not in mon_addrs:
                    mon_addrs.append(mon)
    settings = {"_mon_addrs": mon_addrs}
    for name in ("global", "client", entity):
        settings.update(layers[name])
    return settings


def read(path, entity):
    """CephConf for `entity` from the file at `path`. A missing file is an empty
    config (everything may come from target= options); an unreadable one is an error."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except (IOError, OSError) as e:
        if getattr(e, "errno", None) == 2:
            return CephConf(path, {})
        raise ConfigError("cannot read %s: %s" % (path, e.strerror or e.__class__.__name__))
    if len(data) > _MAX_BYTES:
        raise ConfigError("%s is too big to be a ceph.conf" % path)
    return CephConf(path, parse_text(data.decode("utf-8", "replace"), entity, path))


def _split_tokens(text):
    """Split on commas / spaces / semicolons outside brackets."""
    tokens, cur, depth = [], "", 0
    for c in text:
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        if depth == 0 and (c in ",; \t"):
            if cur:
                tokens.append(cur)
            cur = ""
            continue
        cur += c
    if cur:
        tokens.append(cur)
    return tokens


def _parse_addr(addr, path):
    """One address -> (proto, host, port or None). proto is v1, v2, any or ''."""
    proto = ""
    m = re.match(r"\A(v1|v2|any):(.*)\Z", addr)
    if m:
        proto, addr = m.group(1), m.group(2)
    addr = addr.split("/", 1)[0]  # drop the /nonce
    if addr.startswith("["):
        m = re.match(r"\A\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?\Z", addr)
        if not m:
            raise ConfigError("%s: mon_host entry %r is not a valid [IPv6]:port" % (path, addr))
        host, port = m.group(1), m.group(2)
    else:
        if addr.count(":") > 1:
            raise ConfigError("%s: write the IPv6 monitor %r as [addr]:port" % (path, addr))
        host, _, port = addr.partition(":")
        if not host or not re.match(r"\A[A-Za-z0-9.-]+\Z", host):
            raise ConfigError("%s: mon_host entry %r is not host[:port]" % (path, addr))
    port = int(port) if port else None
    if port is not None and not 0 < port < 65536:
        raise ConfigError("%s: monitor port %d is out of range" % (path, port))
    return proto, host, port


def parse_mon_host(text, path="ceph.conf"):
    """mon_host text -> v1 monitors [(host, port)], in order, without duplicates."""
    out = []
    for token in _split_tokens(text):
        if token.startswith("[") and re.match(r"\A\[(v1|v2|any):", token):
            if not token.endswith("]"):
                raise ConfigError("%s: mon_host address vector %r is not closed" % (path, token))
            entries = [e for e in token[1:-1].split(",") if e]
        else:
            entries = [token]
        for entry in entries:
            proto, host, port = _parse_addr(entry, path)
            if proto == "v2" or (proto == "" and port == V2_PORT):
                continue  # the kernel client needs v1
            mon = (host, port or V1_PORT)
            if mon not in out:
                out.append(mon)
    return out
