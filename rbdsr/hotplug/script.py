"""`block-rbd`'s entry point: dispatch to the hotplug job (rbdsr.hotplug.vbd)
or the admin commands (rbdsr.hotplug.admin); logging and error reporting.

    block-rbd add|remove                      (run by libxl; env XENBUS_PATH)
    block-rbd claims TARGET                   list the claims on an image
    block-rbd break-claim TARGET [--host H] [--dry-run]

On failure of add/remove: `hotplug-error` and `hotplug-status = error` on the
backend (Xen's fatal()), log, exit 1 -- libxl shows hotplug-error in `xl
create`'s output.
"""
import os
import sys
import syslog
import traceback

from rbdsr.errors import RBDError
from rbdsr.hotplug import admin, vbd
from rbdsr.hotplug.target import SYNTAX, parse_target
from rbdsr.hotplug.xenstore import Xenstore
from rbdsr.hostlock import HostLock

PROG = "block-rbd"
LOCK_PATH = "/run/block-rbd/lock"

USAGE = """usage:
  block-rbd add|remove            Xen hotplug (libxl sets XENBUS_PATH)
  block-rbd claims TARGET         list the claims on an image
  block-rbd break-claim TARGET [--host HOST] [--dry-run]
                                  break stale claims: by default this host's claims whose vbd
                                  is gone; --host HOST breaks every claim of HOST (a dead host)

TARGET: %s
""" % SYNTAX

class Log(object):
    """syslog (daemon facility, ident block-rbd) and stderr. Callers never pass secrets."""

    def __init__(self, stderr=None):
        self.stderr = stderr if stderr is not None else sys.stderr
        syslog.openlog(PROG, syslog.LOG_PID, syslog.LOG_DAEMON)

    def _emit(self, prio, msg):
        try:
            syslog.syslog(prio, msg)
        except (OSError, ValueError):
            pass
        try:
            self.stderr.write("%s: %s\n" % (PROG, msg))
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    def info(self, msg):
        self._emit(syslog.LOG_INFO, msg)

    def warn(self, msg):
        self._emit(syslog.LOG_WARNING, msg)

    def error(self, msg):
        self._emit(syslog.LOG_ERR, msg)


def report_failure(xs, backend, log, message):
    """Xen's fatal(): hotplug-error + hotplug-status=error on the backend, log it."""
    log.error("%s: %s" % (backend, message))
    try:
        xs.write((backend + "/hotplug-error", message), (backend + "/hotplug-status", "error"))
    except RBDError as e:
        log.error("cannot report the error in xenstore: %s" % e)


def main(argv=None, environ=None, stdout=None, stderr=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    log = Log(stderr)
    if not argv or argv[0] in ("-h", "--help", "help"):
        (stdout if argv else log.stderr).write(USAGE)
        return 0 if argv else 2
    command = argv[0]
    if command in ("add", "remove"):
        backend = environ.get("XENBUS_PATH", "")
        if not backend.startswith("/"):
            log.error("%s: XENBUS_PATH is not set; this command is run by libxl" % command)
            return 1
        xs = Xenstore()
        try:
            with HostLock(environ.get("BLOCK_RBD_LOCK", LOCK_PATH), 120.0, "another block-rbd"):
                (vbd.do_add if command == "add" else vbd.do_remove)(xs, backend, environ, log)
            return 0
        except RBDError as e:
            report_failure(xs, backend, log, "%s failed: %s" % (command, e))
        except Exception:
            log.error("internal error:\n" + traceback.format_exc())
            report_failure(xs, backend, log, "%s failed: internal error in block-rbd (see syslog)" % command)
        return 1
    if command in ("claims", "break-claim"):
        if len(argv) < 2:
            log.error("%s needs a TARGET\n%s" % (command, USAGE))
            return 2
        try:
            target = parse_target(argv[1])
            if command == "claims":
                return admin.do_claims(target, stdout)
            return admin.do_break_claim(target, argv[2:], environ, stdout, log)
        except RBDError as e:
            log.error(str(e))
            return 1
    log.error("unknown command %r\n%s" % (command, USAGE))
    return 2
