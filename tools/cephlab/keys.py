"""cephx keys and keyring files, made without spawning ceph-authtool (process
start-up is what costs most in the TCG VM guest)."""
import base64
import os
import struct
import time

_CEPH_CRYPTO_AES = 1
_SECRET_LEN = 16


def new_key():
    """A fresh cephx secret in the base64 text form keyrings use: a
    little-endian header (crypto type, creation time, length) then the
    random secret."""
    now = time.time()
    header = struct.pack("<HIIH", _CEPH_CRYPTO_AES, int(now), int((now % 1) * 1e9), _SECRET_LEN)
    return base64.b64encode(header + os.urandom(_SECRET_LEN)).decode("ascii")


def keyring_text(entries):
    """entries: list of (entity, key, caps dict) -> keyring file text."""
    lines = []
    for entity, key, caps in entries:
        lines.append("[%s]" % entity)
        lines.append("\tkey = %s" % key)
        for svc, cap in sorted((caps or {}).items()):
            lines.append('\tcaps %s = "%s"' % (svc, cap))
    return "\n".join(lines) + "\n"


def write_private(path, text):
    """Create path 0600 from the start (never chmod after writing); refuse to
    reuse an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def read_key(path, entity):
    """The key of entity in a keyring file, or None."""
    section = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
            elif section == entity and "=" in line:
                name, _, value = line.partition("=")
                if name.strip() == "key":
                    return value.strip()
    return None
