"""Processes of one dev cluster, found through the pid files under its dir and
checked by command line before anything is signalled."""
import os
import signal
import time

DAEMONS = ("ceph-mon", "ceph-mgr", "ceph-osd")


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def is_ours(pid, conf_path):
    """True when pid is a live Ceph daemon started with our conf file."""
    argv = _cmdline(pid)
    if not argv or _state(pid) in (None, "Z", "X"):
        return False
    return os.path.basename(argv[0]) in DAEMONS and conf_path in argv


def read_pid(pid_file):
    try:
        with open(pid_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    return _state(pid) not in (None, "Z", "X")


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if alive(p)]
        if not pids:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def terminate(pids, timeout, polite=True):
    """SIGTERM, wait up to timeout, then SIGKILL and wait again (only SIGKILL
    when not polite). Returns the pids still alive (should be none)."""
    for sig in (signal.SIGTERM, signal.SIGKILL) if polite else (signal.SIGKILL,):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        pids = wait_gone(pids, timeout)
        if not pids:
            return []
    return pids
