"""Filesystem checks for where a cluster's files go."""
import errno
import os
import tempfile


def supports_odirect(directory):
    """True when files in directory can be opened with O_DIRECT, which
    bluestore's block device needs (tmpfs lacks it before Linux 6.6)."""
    fd, path = tempfile.mkstemp(prefix=".odirect-probe-", dir=directory)
    os.close(fd)
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_DIRECT", 0))
        os.close(fd)
        return True
    except OSError as e:
        if e.errno == errno.EINVAL:
            return False
        raise
    finally:
        os.unlink(path)
