"""Reading small configuration files (keyrings, ceph.conf, known_hosts) safely.

A path from device-config or a block-rbd target may name a FIFO, a device or
a socket: a plain open() of a FIFO blocks until a writer appears, for ever.
We open with O_NONBLOCK (returns at once for a FIFO), then fstat the open
file and refuse anything that is not a regular file, before reading a byte.
"""
import errno
import os
import stat

from rbdsr.errors import ConfigError


def _open_regular(path, what):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise ConfigError("cannot read %s: %s" % (what, e.strerror or e.__class__.__name__))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError("%s is not a regular file" % what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_regular(path, what):
    """ConfigError unless `path` is a readable regular file (for paths a library opens)."""
    os.close(_open_regular(path, what))


def read_regular(path, max_bytes, what, missing_ok=False):
    """The bytes of the regular file `path` (at most max_bytes, else ConfigError).
    With missing_ok, a missing file reads as None."""
    try:
        fd = _open_regular(path, what)
    except ConfigError:
        if missing_ok and not os.path.lexists(path):
            return None
        raise
    try:
        chunks, size = [], 0
        while size <= max_bytes:
            try:
                data = os.read(fd, 65536)
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise ConfigError("cannot read %s: %s" % (what, e.strerror))
            if not data:
                break
            chunks.append(data)
            size += len(data)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise ConfigError("%s is too big (over %d bytes)" % (what, max_bytes))
    return b"".join(chunks)
