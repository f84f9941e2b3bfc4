"""Checksums beside an export: FILE.sha256 in `sha256sum` format, so the
export itself stays a plain Ceph stream and `sha256sum -c FILE.sha256`
checks it without RBDSR. The export is written as FILE.part and renamed when
complete, so a FILE that exists was written to the end."""
import hashlib
import os
import re

from rbdsr.errors import ConfigError, RBDError

SUFFIX = ".sha256"
_LINE_RE = re.compile(r"\A([0-9a-f]{64}) [ *](.+)\n?\Z")


class ChecksumError(RBDError):
    key = "InvalidArg"


class HashingFile(object):
    """Wraps a binary file: every byte read or written goes into sha256; counts them."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.count = 0

    def write(self, data):
        self.f.write(data)
        self.h.update(data)
        self.count += len(data)

    def read(self, n):
        data = self.f.read(n)
        self.h.update(data)
        self.count += len(data)
        return data

    def hexdigest(self):
        return self.h.hexdigest()


class ExportFile(object):
    """Context manager: yields a HashingFile on FILE.part; on success fsyncs,
    renames to FILE and writes FILE.sha256; on failure removes FILE.part."""

    def __init__(self, path, force=False):
        self.path = path
        self.part = path + ".part"
        self.force = force

    def __enter__(self):
        for p in (self.path, self.path + SUFFIX):
            if os.path.lexists(p) and not self.force:
                raise ConfigError("%s exists: refusing to overwrite it (give another file name)" % p)
        fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.f = HashingFile(os.fdopen(fd, "wb", 1 << 20))
        return self.f

    def __exit__(self, exc_type, exc, tb):
        raw = self.f.f
        if exc_type is not None:
            raw.close()
            _unlink(self.part)
            return False
        raw.flush()
        os.fsync(raw.fileno())
        raw.close()
        os.rename(self.part, self.path)
        line = "%s  %s\n" % (self.f.hexdigest(), os.path.basename(self.path))
        tmp = self.path + SUFFIX + ".part"
        with open(tmp, "w") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path + SUFFIX)
        return False


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def expected(path):
    """The sha256 recorded beside path, or None when there is no sidecar."""
    side = path + SUFFIX
    try:
        with open(side) as f:
            text = f.read(4096)
    except (IOError, OSError):
        return None
    m = _LINE_RE.match(text)
    if not m:
        raise ChecksumError("%s is not a sha256sum line" % side)
    return m.group(1)
