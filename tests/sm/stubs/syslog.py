"""Stand-in for the syslog module while a real sm tree runs in tests: sm's
util.SMlog writes through syslog; this sends its lines to the file named by
env SMLOG, so the tests can read what the driver logged."""
import os
import tempfile
import time

LOG_EMERG, LOG_ALERT, LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG = range(8)
LOG_KERN, LOG_USER, LOG_MAIL, LOG_DAEMON, LOG_AUTH = 0, 8, 16, 24, 32
LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3 = 128, 136, 144, 152
LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7 = 160, 168, 176, 184
LOG_PID, LOG_CONS, LOG_NDELAY, LOG_NOWAIT, LOG_PERROR = 1, 2, 8, 16, 32

_ident = ["python"]


def openlog(ident=None, logoption=0, facility=LOG_USER):
    if ident:
        _ident[0] = ident


def closelog():
    pass


def setlogmask(mask):
    return 0


def LOG_MASK(pri):
    return 1 << pri


def LOG_UPTO(pri):
    return (1 << (pri + 1)) - 1


def syslog(*args, _open=open, _environ=os.environ, _time=time):
    # The defaults keep what this needs alive when sm logs from a destructor during
    # interpreter shutdown, after module globals are gone; like the real syslog, never raise.
    message = args[-1]
    path = _environ.get("SMLOG") or os.path.join(tempfile.gettempdir(), "realsm-SMlog")
    try:
        with _open(path, "a") as f:
            f.write("%s %s: %s\n" % (_time.strftime("%b %d %H:%M:%S"), _ident[0], message))
    except Exception:  # noqa: BLE001
        pass
