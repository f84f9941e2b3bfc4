"""A bounded, host-wide exclusive lock (flock on a file under /run): map/unmap
and block-rbd add/remove serialise on it, and nobody waits forever."""
import errno
import fcntl
import os
import time

from rbdsr.errors import TimeoutError_

POLL = 0.1


class HostLock(object):
    """`with HostLock(path, timeout, "an RBD map/unmap"):` -- TimeoutError_ when
    another holder keeps the lock for longer than timeout seconds."""

    def __init__(self, path, timeout, what="another process"):
        self.path = path
        self.timeout = timeout
        self.what = what
        self.fd = None

    def __enter__(self):
        d = os.path.dirname(self.path)
        if not os.path.isdir(d):
            os.makedirs(d, 0o755)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError) as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                os.close(self.fd)
                self.fd = None
                raise TimeoutError_("%s on this host held %s for more than %.0f s"
                                    % (self.what, self.path, self.timeout))
            time.sleep(POLL)

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None
        return False
