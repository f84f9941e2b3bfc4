"""Boot one VM lab guest, run a command in it, return the command's exit code.

Host side of tools/vmlab/run-in-vm. The guest sees:
  - the repo (read-only 9p, tag 'src') at the same absolute path as on the host, as cwd
  - the results dir (writable 9p, tag 'results') at /results and, when possible, also at
    its host path
  - the test data beside the repo (../shared, or env RBDSR_SHARED: real sm trees, blktap,
    dom0's /etc/lvm), when it exists: read-only 9p, tag 'shared', at its host path
  - env RBDSR_IN_VM=1, RBDSR_VM_RESULTS=/results
The command line is handed over as a NUL-separated file in <results>/.vmlab/cmd; the guest
writes <results>/.vmlab/rc. The serial console (kernel + command output) is saved to
<results>/console.log and streamed to stderr unless --quiet.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import imagebuild  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
RC_TIMEOUT = 124      # host hard timeout hit
RC_NO_RESULT = 125    # guest stopped without reporting an exit code

QEMU_BASE = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max",
             "-m", "3G", "-smp", "2", "-nographic", "-net", "none", "-no-reboot"]


def _die_with_parent():
    """preexec_fn for qemu: SIGKILL it if run-in-vm itself dies (even by SIGKILL)."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class _Terminated(Exception):
    pass


def _on_term(signum, _frame):
    raise _Terminated(signum)


def log(msg):
    print("[vmlab] " + msg, file=sys.stderr, flush=True)


def _check_path(p, what):
    if any(c.isspace() for c in p) or "," in p:
        raise SystemExit("vmlab: %s path must not contain spaces or commas: %r" % (what, p))


def shared_dir():
    """The read-only test data beside the repo, or None when there is none."""
    d = os.environ.get("RBDSR_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
    return os.path.realpath(d) if os.path.isdir(d) else None


def qemu_argv(cache, stamp, results, interactive=False, kernel=None):
    kernel = kernel or os.environ.get("RBDSR_VMLAB_KERNEL", "auto")
    vmlinux = os.path.join(cache, "vmlinux")
    if kernel == "vmlinux" or (kernel == "auto" and stamp.get("pvh") and os.path.exists(vmlinux)):
        kimg = vmlinux
    else:
        kimg = os.path.join(cache, "vmlinuz")
    append = ["console=ttyS0", "panic=-1", "loglevel=4", "vmlab_repo=" + REPO,
              "vmlab_results=" + results]
    if interactive:
        append.append("vmlab_interactive=1")
    shared = shared_dir()
    extra = []
    if shared:
        _check_path(shared, "shared")
        append.append("vmlab_shared=" + shared)
        extra = ["-virtfs", "local,path=%s,mount_tag=shared,security_model=none,readonly=on" % shared]
    return QEMU_BASE + extra + [
        "-kernel", kimg,
        "-initrd", os.path.join(cache, "initrd.img"),
        "-append", " ".join(append),
        "-drive", "file=%s,if=virtio,format=raw,snapshot=on" % os.path.join(cache, "rootfs.ext4"),
        "-virtfs", "local,path=%s,mount_tag=src,security_model=none,readonly=on" % REPO,
        "-virtfs", "local,path=%s,mount_tag=results,security_model=none" % results,
    ]


def run(cmd, results=None, timeout=1200, quiet=False, interactive=False, kernel=None, env=None):
    if shutil.which("qemu-system-x86_64") is None:
        raise SystemExit("vmlab: qemu-system-x86_64 not found; apt-get install qemu-system-x86")
    t_start = time.monotonic()
    stamp = imagebuild.ensure_built()
    cache = imagebuild.cache_dir()
    if results is None:
        results = tempfile.mkdtemp(prefix="rbdsr-vm-")
    results = os.path.abspath(results)
    os.makedirs(results, exist_ok=True)
    _check_path(REPO, "repo")
    _check_path(results, "results")
    ctl = os.path.join(results, ".vmlab")
    os.makedirs(ctl, exist_ok=True)
    for name in ("rc", "rc.tmp", "cmd_start_uptime", "cmd_end_uptime", "env"):
        try:
            os.unlink(os.path.join(ctl, name))
        except FileNotFoundError:
            pass
    with open(os.path.join(ctl, "cmd"), "wb") as f:
        f.write(b"".join(a.encode() + b"\0" for a in cmd))
    if env:
        # Not for secrets: the results dir is readable on the host.
        with open(os.path.join(ctl, "env"), "wb") as f:
            f.write(b"".join(("%s=%s" % kv).encode() + b"\0" for kv in sorted(env.items())))

    argv = qemu_argv(cache, stamp, results, interactive, kernel)
    console_path = os.path.join(results, "console.log")
    log("booting (kernel %s, timeout %d s); console log: %s"
        % (stamp.get("kernel_release"), timeout, console_path))
    t_boot = time.monotonic()
    marks = {}
    with open(console_path, "wb") as console:
        # qemu gets its own session (a terminal's ^C reaches only us); we kill it on
        # SIGTERM/SIGHUP (e.g. from `timeout`), and the kernel kills it if we die.
        old = {s: signal.signal(s, _on_term) for s in (signal.SIGTERM, signal.SIGHUP)}
        if interactive:
            proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent)
        else:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent)

            def pump():
                for line in iter(proc.stdout.readline, b""):
                    console.write(line)
                    console.flush()
                    if b"command starts:" in line and "cmd" not in marks:
                        marks["cmd"] = time.monotonic()
                    if not quiet:
                        sys.stderr.buffer.write(line)
                        sys.stderr.buffer.flush()

            th = threading.Thread(target=pump, daemon=True)
            th.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            log("TIMEOUT after %d s: killing qemu (pid %d)" % (timeout, proc.pid))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except (KeyboardInterrupt, _Terminated) as e:
            log("interrupted (%s): killing qemu (pid %d)" % (type(e).__name__, proc.pid))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(e, _Terminated):
                sys.exit(128 + e.args[0])
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if not interactive:
            th.join(10)
    t_end = time.monotonic()

    rc_file = os.path.join(ctl, "rc")
    if timed_out:
        rc = RC_TIMEOUT
    elif os.path.exists(rc_file):
        with open(rc_file) as f:
            rc = int(f.read().strip())
    else:
        log("guest stopped without an exit code (qemu rc %s); see %s" % (proc.returncode, console_path))
        rc = RC_NO_RESULT
    boot = (marks["cmd"] - t_boot) if "cmd" in marks else None
    log("done: rc=%d; image ready %.1f s, boot->command %s, command+poweroff %s, total %.1f s; results in %s"
        % (rc, t_boot - t_start,
           "%.1f s" % boot if boot is not None else "n/a",
           "%.1f s" % (t_end - marks["cmd"]) if "cmd" in marks else "n/a",
           t_end - t_start, results))
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="tools/vmlab/run-in-vm",
        usage="%(prog)s [--timeout S] [--results DIR] [--env NAME=VALUE] [--quiet] [--interactive] -- CMD...",
        description="Boot the VM lab (building the image first if needed), run CMD as root in "
                    "the repo dir inside the guest, return CMD's exit code "
                    "(124: host timeout, 125: guest gave no exit code).")
    ap.add_argument("--timeout", type=float, default=1200, help="hard limit for the whole VM run (s)")
    ap.add_argument("--results", help="host dir shared writable with the guest at /results "
                                      "(default: a new /tmp/rbdsr-vm-* dir)")
    ap.add_argument("--quiet", action="store_true", help="do not stream the console (still saved)")
    ap.add_argument("--interactive", action="store_true",
                    help="attach the console to this terminal (debugging; e.g. -- bash)")
    ap.add_argument("--kernel", choices=("auto", "vmlinux", "bzimage"), default=None,
                    help="kernel image to boot (default auto: PVH vmlinux when available)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for CMD in the guest (repeatable; not for secrets)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("missing command after --")
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name.replace("_", "a").isalnum():
            ap.error("--env wants NAME=VALUE, got %r" % item)
        env[name] = value
    return run(cmd, results=args.results, timeout=args.timeout, quiet=args.quiet,
               interactive=args.interactive, kernel=args.kernel, env=env)
