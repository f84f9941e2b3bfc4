"""install_rbdsr.py rehook: what the rbdsr RPM's triggers on the sm package run
after sm was installed or updated (an update puts the stock driver file back, so
the hook is gone).

check; when anything is missing, enable (packaged when the install is); check
again. Every step goes to syslog with sm's own facility (local2: /var/log/SMlog
on dom0), ident RBDSR. Always exit 0: a trigger that fails would fail the sm
transaction, and sm as the update left it is better than a half-applied update.
A failure is said loudly on stderr (yum shows it) and in SMlog."""
import io
import sys
import syslog

from rbdsr.errors import RBDError
from rbdsr.installer import check as checkmod
from rbdsr.installer.context import Context
from rbdsr.installer.enable import enable

IDENT = "RBDSR"
DEFAULT_WHY = "sm installed or updated"
FACILITY = syslog.LOG_LOCAL2  # sm's util.SMlog facility


def log(prio, msg):
    """One line to syslog; never raises (no syslog daemon: the line is lost)."""
    try:
        syslog.openlog(IDENT, syslog.LOG_PID, FACILITY)
        syslog.syslog(prio, msg)
        syslog.closelog()
    except (OSError, ValueError):
        pass


def rehook(ctx, why):
    """Re-apply whatever check finds missing; returns 0 whatever happened."""
    why = why or DEFAULT_WHY
    before = checkmod.collect(ctx)
    if not before.problems:
        msg = "%s: the RBDSR hook is in place, nothing to do" % why
        log(syslog.LOG_INFO, msg)
        ctx.say("rbdsr: " + msg)
        return 0
    log(syslog.LOG_NOTICE, "%s: re-applying RBDSR: %s" % (why, "; ".join(before.problems)))
    buf = io.StringIO()
    sub = Context(ctx.root, ctx.source, False, False, buf, ctx.packaged)
    try:
        rc = enable(sub)
        err = None
    except (RBDError, EnvironmentError) as e:
        rc, err = 2, str(e)
    for line in buf.getvalue().splitlines() + ([err] if err else []):
        log(syslog.LOG_INFO, "enable: " + line)
    after = checkmod.collect(ctx)
    if rc == 0 and not after.problems:
        hooked = [line for line in after.ok if line.startswith("hook ")]
        msg = "%s: re-applied the RBDSR hook (%s)" % (why, "; ".join(hooked))
        log(syslog.LOG_NOTICE, msg)
        ctx.say("rbdsr: " + msg)
        return 0
    problems = ([err] if err else []) + [p for p in after.problems if p != err]
    return report_failure(why, problems or ["enable exited %d" % rc], buf.getvalue() if err is None else "")


def report_failure(why, problems, details=""):
    """Say loudly (stderr, syslog) that sm is not hooked; returns 0 (see above)."""
    msg = ("%s: RE-HOOKING sm FAILED: %s. RBD SRs will not attach on this host until it is fixed: "
           "run /usr/lib/rbdsr/install_rbdsr.py enable (sm was left as the update installed it)"
           % (why or DEFAULT_WHY, "; ".join(problems)))
    log(syslog.LOG_ERR, msg)
    bar = "*" * 72
    sys.stderr.write("%s\nrbdsr: %s\n%s\n%s" % (bar, msg, bar, details))
    sys.stderr.flush()
    return 0
