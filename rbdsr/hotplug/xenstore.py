"""xenstore access the way Xen's hotplug scripts do it: the xenstore-read,
-write, -list, -rm and -exists commands (xenstore-utils), each run as an argv list
with a timeout. Values written here are never secrets.
"""
from rbdsr import proc
from rbdsr.errors import RBDError

DEFAULT_TIMEOUT = 10.0


class XenstoreError(RBDError):
    """xenstore could not be read or written."""

    key = "SMGeneral"


class Xenstore(object):
    """Bounded xenstore commands. `prefix` lets tests and odd installs name the tools' directory."""

    def __init__(self, timeout=DEFAULT_TIMEOUT, prefix=""):
        self.timeout = timeout
        self.prefix = prefix

    def _run(self, tool, args):
        argv = [self.prefix + tool] + list(args)
        try:
            return proc.run(argv, self.timeout)
        except RBDError as e:
            if "cannot run" in str(e):
                raise XenstoreError("%s is not available (install xenstore-utils): %s" % (tool, e))
            raise XenstoreError(str(e))

    def exists(self, path):
        res = self._run("xenstore-exists", [path])
        # 1 with a message is "cannot reach xenstore" (xs_open), 1 without is "no such node".
        if res.rc not in (0, 1) or (res.rc == 1 and res.err.strip()):
            raise XenstoreError("xenstore-exists %s failed: %s" % (path, _first_line(res.err)))
        return res.rc == 0

    def read(self, path, default=None):
        """The value at path; `default` when the node does not exist."""
        res = self._run("xenstore-read", [path])
        if res.rc == 0:
            out = res.out
            return out[:-1] if out.endswith("\n") else out
        if not self.exists(path):
            return default
        raise XenstoreError("xenstore-read %s failed: %s" % (path, _first_line(res.err)))

    def list(self, path):
        """Child names of path ([] when it does not exist)."""
        res = self._run("xenstore-list", [path])
        if res.rc == 0:
            return [line for line in res.out.splitlines() if line]
        if not self.exists(path):
            return []
        raise XenstoreError("xenstore-list %s failed: %s" % (path, _first_line(res.err)))

    def write(self, *pairs):
        """write((path, value), ...): all pairs in one xenstore-write call."""
        args = []
        for path, value in pairs:
            args += [path, value]
        res = self._run("xenstore-write", args)
        if res.rc != 0:
            raise XenstoreError("xenstore-write %s failed: %s"
                                % (" ".join(p for p, _ in pairs), _first_line(res.err)))

    def rm(self, path):
        """Remove path (missing is fine)."""
        res = self._run("xenstore-rm", [path])
        if res.rc != 0 and self.exists(path):
            raise XenstoreError("xenstore-rm %s failed: %s" % (path, _first_line(res.err)))


def _first_line(text):
    text = (text or "").strip()
    return text.splitlines()[0] if text else "no message"
