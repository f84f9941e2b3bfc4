"""Command lines of install_rbdsr.py and uninstall_rbdsr.py."""
import argparse
import errno
import fcntl
import os
import sys

from rbdsr.errors import RBDError
from rbdsr.installer import EXIT_MISSING, EXIT_OK, EXIT_REFUSED
from rbdsr.installer.context import Context

EXIT_HELP = """exit codes:
  0  done; for check/status: installed and complete
  1  not installed, incomplete or drifted (check/status), or something was left
     in place (disable/uninstall; the output says what)
  2  usage error, or refused: unknown sm layout, hook anchor not found exactly
     once, RBD devices still mapped, a genuine iSCSI SR on port 6789, or a
     failure (the host is left as it was)
"""

COMMANDS = {
    "enable": "install RBDSR and hook sm's LVHDoISCSISR (idempotent; completes an interrupted run)",
    "disable": "unhook sm and remove what enable installed, restoring every file byte-identical",
    "check": "verify every piece is in place (exit 0) or list what is missing (exit 1)",
    "status": "human summary: versions, sm layout, hook state per file, lvm.conf, mapped RBD devices",
    "rehook": "for package triggers after an sm install/update: enable if check finds anything missing, "
              "log to syslog (SMlog), always exit 0 (a failure is said loudly)",
}
_CHANGES = ("enable", "disable", "uninstall", "rehook")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(EXIT_REFUSED)


def _common(p):
    p.add_argument("--root", default="/", metavar="DIR",
                   help="treat DIR as the filesystem root (tests, image preparation); default /")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    p.add_argument("--force", action="store_true",
                   help="disable/uninstall even while RBD devices are mapped on this host; enable: "
                   "replace an installed release's files even then")
    p.add_argument("--source", metavar="DIR", default=None,
                   help="release directory to install from (default: the one holding this script)")


def build_parser(prog, with_command=True):
    p = _Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_HELP,
                description="Install, check or remove RBDSR (Ceph RBD SRs over sm's lvmoiscsi) on dom0."
                if with_command else "Disable RBDSR and remove every file it installed, and its state "
                "and backups (/var/lib/rbdsr).")
    if with_command:
        p.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND",
                       help="; ".join("%s: %s" % kv for kv in sorted(COMMANDS.items())))
    _common(p)
    if with_command:
        p.add_argument("--packaged", action="store_true",
                       help="enable: the release in /usr/lib/rbdsr and rbdsr.pth were installed by the "
                            "rbdsr RPM: hook sm and configure the host, but leave those files to rpm "
                            "(the RPM's scriptlets pass it; later enables remember it)")
        p.add_argument("--why", default=None, metavar="TEXT",
                       help="rehook: what happened, for the log (e.g. 'sm 3.2.12-21 installed')")
        p.add_argument("--ceph", action="store_true",
                       help="check/status: also try a TCP connection to each Ceph monitor")
        p.add_argument("--target", metavar="MONS", default=None,
                       help="monitors for --ceph, 'host[:port],...' (default: mon_host of /etc/ceph/ceph.conf)")
        p.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                       help="per-monitor connect timeout for --ceph (default 3)")
        p.add_argument("--allow-iscsi-on-6789", action="store_true",
                       help="enable even though XAPI lists genuine iSCSI SRs (target IQN iqn./eui./naa.) on "
                       "port 6789: RBDSR will serve them")
    return p


def _lock(root):
    """One installer at a time per root: flock on the root directory itself
    (leaves no lock file behind)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError) as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise RBDError("another install_rbdsr.py / uninstall_rbdsr.py is running on %s" % root)
        raise
    return fd


def run(command, args, out=None):
    """Run one command; returns the exit code. Never lets a traceback out for
    expected failures."""
    prog = "uninstall_rbdsr.py" if command == "uninstall" else "install_rbdsr.py"
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        sys.stderr.write("%s: error: --root %s is not a directory\n" % (prog, args.root))
        return EXIT_REFUSED
    ctx = Context(root, args.source, args.dry_run, args.force, out, getattr(args, "packaged", False))
    ctx.allow_iscsi_6789 = getattr(args, "allow_iscsi_on_6789", False)
    if ctx.live and command in _CHANGES and not args.dry_run and os.geteuid() != 0:
        sys.stderr.write("%s: error: %s needs root\n" % (prog, command))
        return EXIT_REFUSED
    lock = None
    try:
        if command in _CHANGES and not args.dry_run:
            lock = _lock(root)
        if command == "enable":
            from rbdsr.installer.enable import enable
            return enable(ctx)
        if command == "disable":
            from rbdsr.installer.disable import disable
            return disable(ctx)
        if command == "uninstall":
            from rbdsr.installer.disable import uninstall
            return uninstall(ctx)
        if command == "rehook":
            from rbdsr.installer.rehook import rehook
            return rehook(ctx, args.why)
        from rbdsr.installer import check
        fn = check.check if command == "check" else check.status
        return fn(ctx, args.ceph, args.target, args.timeout)
    except RBDError as e:
        return _failed(prog, command, args, str(e))
    except EnvironmentError as e:
        return _failed(prog, command, args, "%s%s" % (e.strerror or e, " (%s)" % e.filename
                                                      if getattr(e, "filename", None) else ""))
    finally:
        if lock is not None:
            os.close(lock)


def _failed(prog, command, args, why):
    if command == "rehook":  # a package trigger: never fail the sm transaction, say it loudly
        from rbdsr.installer.rehook import report_failure
        return report_failure(args.why, [why])
    sys.stderr.write("%s: %s: %s\n" % (prog, command, why))
    return EXIT_REFUSED


def install_main(argv=None, out=None):
    args = build_parser("install_rbdsr.py").parse_args(argv)
    return run(args.command, args, out)


def uninstall_main(argv=None, out=None):
    args = build_parser("uninstall_rbdsr.py", with_command=False).parse_args(argv)
    return run("uninstall", args, out)


__all__ = ["install_main", "uninstall_main", "EXIT_OK", "EXIT_MISSING", "EXIT_REFUSED"]
