"""Secrets (cephx keys, SSH passwords) that never print themselves.

A `Secret` hides its value from str()/repr()/format(), so it cannot leak into
a log line or an exception message by accident; `.reveal()` is the one way to
the value and only the kernel keyring (and krbd's inline `secret=` fallback),
the librados config setter, the SSH login and the HA config call it. Every live secret value is also remembered (weakly, by
object) so `rbdsr.proc` can refuse to put one on a command line.
"""
import base64
import binascii
import re
import struct
import weakref

from rbdsr import files
from rbdsr.errors import ConfigError

REDACTED = "<secret>"

# Secrets created in this process; proc.run checks argv against them.
_LIVE = weakref.WeakSet()


class Secret(object):
    """A secret string. str()/repr() give "<secret>"; reveal() gives the value."""

    __slots__ = ("_value", "__weakref__")

    def __init__(self, value):
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value
        _LIVE.add(self)

    def reveal(self):
        return self._value

    def __str__(self):
        return REDACTED

    __repr__ = __str__

    def __format__(self, spec):
        return REDACTED

    def __eq__(self, other):
        return isinstance(other, Secret) and other._value == self._value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((Secret, self._value))

    def __bool__(self):
        return bool(self._value)

    def __len__(self):
        return len(self._value)

    def __reduce__(self):
        raise TypeError("a Secret is not picklable")


def live_secret_values():
    """Values of the secrets alive in this process (for leak checks)."""
    # very short values would match harmless words; real keys are 40 characters
    return [s.reveal() for s in list(_LIVE) if len(s.reveal()) >= 8]


# A cephx key's text: 38 base64 characters and "==" (base64 of 28 bytes).
_KEYLIKE_RE = re.compile(r"[A-Za-z0-9+/]{38}==")
WITHHELD = "(value withheld: it looks like a cephx key)"


def looks_like_key(text):
    """True when `text` holds something shaped like a cephx key (pasted in the wrong field)."""
    return isinstance(text, str) and bool(_KEYLIKE_RE.search(text))


def show(value, limit=60):
    """A value safe to quote in a message, SMlog or a XAPI fault: printable
    ASCII, bounded, and withheld entirely when it looks like a key or holds a
    live secret. Every message that quotes a device-config value uses this."""
    if isinstance(value, Secret):
        return REDACTED
    text = value if isinstance(value, str) else repr(value)
    if looks_like_key(text) or contains_secret(text):
        return WITHHELD
    text = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def contains_secret(text):
    """True when `text` contains the value of any live secret."""
    if not text:
        return False
    return any(v in text for v in live_secret_values())


# A cephx key is base64 of: le16 type (1 = AES), le32 created.sec,
# le32 created.nsec, le16 secret length (16), then the 16 secret bytes.
_CEPHX_HEADER = struct.Struct("<HIIH")
CEPHX_KEY_LEN = 40  # base64 of 28 bytes
_B64_RE = re.compile(r"\A[A-Za-z0-9+/]{38}==\Z")


def cephx_key_bytes(text):
    """The 28 raw bytes of a cephx secret key (what the kernel's "ceph" key type
    takes), or None when `text` (str or Secret) is not exactly one: base64 of
    28 bytes, type 1 (AES), secret length 16. The one decoder of key text."""
    if isinstance(text, Secret):
        text = text.reveal()
    if not isinstance(text, str) or not _B64_RE.match(text):
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _CEPHX_HEADER.size + 16:
        return None
    ktype, _sec, _nsec, klen = _CEPHX_HEADER.unpack(raw[:_CEPHX_HEADER.size])
    return raw if ktype == 1 and klen == 16 else None


def is_cephx_key(text):
    """True when text is exactly a cephx secret key (cephx_key_bytes)."""
    return cephx_key_bytes(text) is not None


def make_cephx_key(secret_bytes, sec=0, nsec=0):
    """Build the base64 text of a cephx key from 16 secret bytes (for tests and tools)."""
    if len(secret_bytes) != 16:
        raise ValueError("a cephx secret is 16 bytes")
    raw = _CEPHX_HEADER.pack(1, sec, nsec, 16) + bytes(secret_bytes)
    return base64.b64encode(raw).decode("ascii")


_SECTION_RE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*$")
_KEY_RE = re.compile(r"^\s*key\s*=\s*(\S+)\s*$")


def parse_keyring_text(text, entity):
    """The key of `entity` ("client.<id>") in keyring text, as a Secret, or None."""
    section = None
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";")):
            continue
        m = _SECTION_RE.match(line)
        if m:
            section = m.group(1)
            continue
        m = _KEY_RE.match(line)
        if m and section == entity:
            return Secret(m.group(1))
    return None


# Keyrings are small; anything bigger is not a keyring.
_MAX_KEYRING_BYTES = 1 << 20


def read_keyring(path, entity, name=None):
    """Read the key of `entity` from the keyring file at `path` (a regular file:
    a FIFO or device there must not block us).

    Errors name the file as `name` (default: the path; the caller passes
    something else when the path itself came from a secret field) and the
    entity, never file content.
    """
    name = path if name is None else name
    data = files.read_regular(path, _MAX_KEYRING_BYTES, "keyring %s" % name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("keyring %s is not a text keyring" % name)
    key = parse_keyring_text(text, entity)
    if key is None:
        raise ConfigError("keyring %s has no key for %s" % (name, entity))
    if not is_cephx_key(key):
        raise ConfigError("the key for %s in keyring %s is not a valid cephx key" % (entity, name))
    return key
