"""I/O on a mapped RBD device that a dead cluster cannot turn into a hang.

Each operation runs in a child process (`python3 -m lvm_helpers.devio OP DEV`)
that the caller stops waiting for after a timeout. Why a child and not a
thread: I/O to a krbd device whose OSDs do not answer sleeps in the kernel,
and a thread asleep there keeps the whole driver process -- and XAPI's pipe
to it -- alive. A child in its own session, holding none of our descriptors,
can be killed and left behind; the kernel ends its request when the map's
osd_request_timeout fires (rbdsr.krbd).

Reads drop the device's page cache first (another host may have written the
image) and are buffered: a process waiting for a page is killable, one in
O_DIRECT I/O is not. Discards go out in chunks; the child reports each one,
and the caller's timeout counts from the last report, so a large image is
bounded per chunk rather than in total.
"""
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time

from rbdsr.errors import RBDError, TimeoutError_

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLKDISCARD = 0x1277  # _IO(0x12, 119)
DISCARD_CHUNK = 256 << 20
GRACE = 2.0  # how long a killed child gets to go before we stop watching it


class DeviceIOError(RBDError):
    """The child could not do the I/O (an error, not a timeout)."""

    key = "SRUnavailable"


# ---------------------------------------------------------------- parent side

def run(op, dev, timeout, what=None):
    """Run OP on DEV in a child; return its last JSON report.

    Raises TimeoutError_ when the child is silent for `timeout` seconds (it is
    killed and not waited for) and DeviceIOError when it fails."""
    what = what or "%s of %s" % (op, dev)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    try:
        child = subprocess.Popen([sys.executable, "-m", "lvm_helpers.devio", op, dev],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=env, cwd="/", start_new_session=True, close_fds=True)
    except OSError as e:
        raise DeviceIOError("cannot start the device I/O helper for %s: %s" % (what, e.strerror or e))
    last = None
    buf = b""
    deadline = time.monotonic() + timeout
    fd = child.stdout.fileno()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _abandon(child)
                raise TimeoutError_("%s got no answer from the device within %.0f s (is the Ceph cluster "
                                    "down?)" % (what, timeout))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                last = _parse(line, what)
                deadline = time.monotonic() + timeout  # progress: the bound counts from here
        rc = _reap(child, deadline)
    except BaseException:
        _abandon(child)
        raise
    err = child.stderr.read().decode("utf-8", "replace").strip().splitlines() if rc is not None else []
    child.stdout.close()
    child.stderr.close()
    if rc != 0 or last is None or "error" in (last or {}):
        reason = (last or {}).get("error") or (err[-1] if err else "exit %s" % rc)
        raise DeviceIOError("%s failed: %s" % (what, reason))
    return last


def _parse(line, what):
    try:
        obj = json.loads(line.decode("utf-8"))
    except ValueError:
        raise DeviceIOError("%s: unexpected answer from the device I/O helper" % what)
    if not isinstance(obj, dict):
        raise DeviceIOError("%s: unexpected answer from the device I/O helper" % what)
    return obj


def _reap(child, deadline):
    while True:
        rc = child.poll()
        if rc is not None:
            return rc
        if time.monotonic() >= deadline:
            _abandon(child)
            return None
        time.sleep(0.02)


def _abandon(child):
    """SIGKILL the child's session and stop watching it. A child asleep in the
    kernel dies when its request ends; we do not wait for that."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
    end = time.monotonic() + GRACE
    while child.poll() is None and time.monotonic() < end:
        time.sleep(0.02)
    for f in (child.stdout, child.stderr):
        try:
            f.close()
        except OSError:
            pass


def device_state(dev, timeout):
    """lvm_helpers.pv.device_state(dev) in a child: (state, vg or None)."""
    out = run("state", dev, timeout, "examining %s" % dev)
    return out.get("state"), out.get("vg")


def discard(dev, timeout):
    """Discard every byte of DEV (the kernel client deletes or zeroes the
    objects): nothing written before reads back afterwards. Returns bytes discarded."""
    return run("discard", dev, timeout, "discarding %s" % dev).get("done")


def inflight(dev_path):
    """Requests the block layer has in flight on DEV (reads + writes), or None."""
    name = os.path.basename(os.path.realpath(dev_path))
    try:
        with open("/sys/block/%s/inflight" % name) as f:
            return sum(int(x) for x in f.read().split())
    except (IOError, OSError, ValueError):
        return None


# ---------------------------------------------------------------- child side

def _emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _child_state(dev):
    from lvm_helpers import pv
    state, vg = pv.device_state(dev)
    _emit({"state": state, "vg": vg})


def _child_discard(dev):
    fd = os.open(dev, os.O_WRONLY | os.O_CLOEXEC)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        done = 0
        while done < size:
            n = min(DISCARD_CHUNK, size - done)
            fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", done, n))
            done += n
            _emit({"done": done, "size": size})
        os.fsync(fd)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except (OSError, AttributeError):
            pass
        if size == 0:
            _emit({"done": 0, "size": 0})
    finally:
        os.close(fd)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("state", "discard"):
        sys.stderr.write("usage: python3 -m lvm_helpers.devio state|discard DEVICE\n")
        return 2
    try:
        (_child_state if argv[1] == "state" else _child_discard)(argv[2])
    except (OSError, IOError) as e:
        _emit({"error": "%s: %s" % (argv[2], e.strerror or e)})
        return 1
    except RBDError as e:
        _emit({"error": str(e)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
