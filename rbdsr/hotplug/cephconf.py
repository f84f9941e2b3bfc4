"""What block-rbd takes from ceph.conf: monitors, fsid and the keyring path.

Only these settings are read; librados reads the file itself for everything
else. ceph.conf is INI-like: "mon host", "mon_host" and "mon-host" are one
key, later sections win in the order [global] < [client] < [client.ID], and
'#' / ';' start comments.

mon_host is parsed by rbdsr.monaddr.parse_mon_host (v1 addresses only).
"""
import re

from rbdsr import files
from rbdsr.monaddr import parse_mon_host

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
    config (everything may come from target= options); an unreadable one, or
    one that is not a regular file (a FIFO would block), is an error."""
    data = files.read_regular(path, _MAX_BYTES, path, missing_ok=True)
    if data is None:
        return CephConf(path, {})
    return CephConf(path, parse_text(data.decode("utf-8", "replace"), entity, path))
