"""Run a subprocess with a hard timeout; its argv never holds a secret.

Secrets go to a child through stdin (`input=`), never through argv or the
environment, because /proc/<pid>/cmdline is readable by every local user.
"""
import os
import signal
import subprocess

from rbdsr.errors import RBDError, TimeoutError_
from rbdsr.secret import Secret, contains_secret


class ProcResult(object):
    __slots__ = ("argv", "rc", "out", "err")

    def __init__(self, argv, rc, out, err):
        self.argv = argv
        self.rc = rc
        self.out = out
        self.err = err

    def __repr__(self):
        return "ProcResult(rc=%r)" % self.rc


def check_argv(argv):
    """Refuse an argv that carries a secret (a Secret object or a live secret's value)."""
    for arg in argv:
        if isinstance(arg, Secret) or contains_secret(str(arg)):
            raise RBDError("refusing to put a secret on a command line (%s)" % os.path.basename(str(argv[0])))


def run(argv, timeout, input=None, env=None, cwd=None):
    """Run argv (a list, no shell) with a timeout in seconds.

    input: text for stdin (a Secret is revealed only into the pipe).
    Returns ProcResult; raises TimeoutError_ after killing the whole process
    group when the timeout runs out.
    """
    check_argv(argv)
    argv = [str(a) for a in argv]
    if isinstance(input, Secret):
        input = input.reveal()
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as e:
        raise RBDError("cannot run %s: %s" % (argv[0], e.strerror or e))
    try:
        out, err = child.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        raise TimeoutError_("%s did not finish within %ss" % (os.path.basename(argv[0]), timeout))
    except BaseException:
        _kill_group(child)
        raise
    return ProcResult(argv, child.returncode, out, err)


def _kill_group(child):
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        child.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass
