"""Snapshot names: rbdsr-<sr uuid>-<UTC time>[-<label>].

The SR uuid in the name is what makes a snapshot this SR's: retention and
removal only ever touch names that parse and carry the SR's own uuid."""
import re
import time

from rbdsr.errors import ConfigError

PREFIX = "rbdsr-"
TIME_FMT = "%Y%m%dT%H%M%SZ"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_.+=]{0,39}"
_NAME_RE = re.compile(r"\A%s(%s)-([0-9]{8}T[0-9]{6}Z)(?:-(%s))?\Z" % (re.escape(PREFIX), _UUID, _LABEL))
_LABEL_RE = re.compile(r"\A%s\Z" % _LABEL)
UUID_RE = re.compile(r"\A%s\Z" % _UUID)


class SnapName(object):
    __slots__ = ("name", "sr_uuid", "when", "label")

    def __init__(self, name, sr_uuid, when, label):
        self.name = name
        self.sr_uuid = sr_uuid
        self.when = when
        self.label = label


def check_label(label):
    if not _LABEL_RE.match(label or ""):
        raise ConfigError("snapshot label %r: 1-40 letters, digits, _ . + = (no '-'), starting with a"
                          " letter, digit or _" % (label,))
    return label


def make(sr_uuid, label=None, now=None):
    """The name of a new snapshot of SR sr_uuid taken now (UTC)."""
    if not UUID_RE.match(sr_uuid or ""):
        raise ConfigError("%r is not an SR uuid" % (sr_uuid,))
    stamp = time.strftime(TIME_FMT, time.gmtime(time.time() if now is None else now))
    name = "%s%s-%s" % (PREFIX, sr_uuid, stamp)
    if label is not None:
        name += "-" + check_label(label)
    return name


def parse(name):
    """SnapName for an rbdsr snapshot name, None for any other name."""
    m = _NAME_RE.match(name or "")
    if not m:
        return None
    return SnapName(name, m.group(1), m.group(2), m.group(3))


def belongs(name, sr_uuid):
    p = parse(name)
    return p is not None and p.sr_uuid == sr_uuid
