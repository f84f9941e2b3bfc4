"""Running LVM commands: argument lists, a timeout, errors that say what failed."""
import os

from rbdsr import proc
from rbdsr.errors import RBDError

DEFAULT_TIMEOUT = 60.0


class LVMError(RBDError):
    """An LVM command failed (the message carries LVM's own words)."""

    key = "SMGeneral"


def _env():
    env = dict(os.environ)
    # sm and our callers may leak descriptors; LVM would warn on every call.
    env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
    return env


def run(argv, timeout=DEFAULT_TIMEOUT, check=True):
    """Run an LVM command; return ProcResult. check=True raises LVMError on rc != 0."""
    res = proc.run(list(argv), timeout, env=_env())
    if check and res.rc != 0:
        raise LVMError("%s failed (exit %d): %s" % (" ".join(argv[:2]), res.rc, _last_lines(res.err)))
    return res


def _last_lines(text, n=3):
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return " / ".join(lines[-n:]) or "no message"
