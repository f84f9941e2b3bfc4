"""The running system (or a --root image): dom0's python, the rbd module,
mapped RBD devices, monitor reachability, sm's package version."""
import os
import socket
import sys

from rbdsr import monaddr, proc
from rbdsr.errors import ConfigError, RBDError

DOM0_PYTHON = "/usr/bin/python3"
RBD_SYSFS = "sys/bus/rbd/devices"


def tool(name):
    """Absolute path of a system tool; sbin directories are searched too (root's
    PATH under sudo or cron may lack them). The bare name when not found."""
    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    for d in dirs:
        path = os.path.join(d, name)
        if d and os.access(path, os.X_OK) and os.path.isfile(path):
            return path
    return name


def is_live(root):
    return os.path.realpath(root) == "/"


def dom0_python(root):
    """The interpreter sm runs under: /usr/bin/python3 on the running system;
    under another root, this interpreter (syntax checks only)."""
    if is_live(root) and os.path.exists(DOM0_PYTHON):
        return DOM0_PYTHON
    return sys.executable


def mapped_rbd_devices(root):
    """['rbd0 (pool/image)', ...] from <root>/sys/bus/rbd/devices."""
    top = os.path.join(root, RBD_SYSFS)
    try:
        ids = sorted(os.listdir(top), key=lambda s: (len(s), s))
    except OSError:
        return []
    out = []
    for dev_id in ids:
        parts = []
        for attr in ("pool", "pool_ns", "name"):
            try:
                with open(os.path.join(top, dev_id, attr)) as f:
                    value = f.read().strip()
            except (IOError, OSError):
                value = ""
            if value:
                parts.append(value)
        out.append("rbd%s (%s)" % (dev_id, "/".join(parts) or "?"))
    return out


def rbd_module_state(root, timeout=20):
    """('loaded'|'loadable'|'missing'|'skipped', detail)."""
    if not is_live(root):
        return "skipped", "not the running system"
    if os.path.isdir("/sys/module/rbd"):
        return "loaded", ""
    try:
        r = proc.run([tool("modprobe"), "-n", "-q", "rbd"], timeout)
    except RBDError as e:
        return "missing", str(e)
    return ("loadable", "") if r.rc == 0 else ("missing", (r.err or "").strip())


def modprobe_rbd(timeout=30):
    """Load rbd now; None on success, else why not."""
    if os.path.isdir("/sys/module/rbd"):
        return None
    try:
        r = proc.run([tool("modprobe"), "rbd"], timeout)
    except RBDError as e:
        return str(e)
    return None if r.rc == 0 else "modprobe rbd: %s" % ((r.err or "").strip() or "rc %d" % r.rc)


def run_python(root, code, args, timeout=120):
    """Run dom0's python with `code`; None on success, else the error text."""
    try:
        r = proc.run([dom0_python(root), "-c", code] + list(args), timeout)
    except RBDError as e:
        return str(e)
    if r.rc == 0:
        return None
    lines = ((r.err or "") + (r.out or "")).strip().splitlines()
    return lines[-1] if lines else "rc %d" % r.rc


def sm_package_version(root, timeout=20):
    if not is_live(root):
        return "unknown (not the running system)"
    try:
        r = proc.run([tool("rpm"), "-q", "--qf", "%{VERSION}-%{RELEASE}", "sm"], timeout)
    except RBDError:
        return "unknown"
    return r.out.strip() if r.rc == 0 and r.out.strip() else "unknown"


def ceph_monitors(root, target=None):
    """v1 monitors [(host, port)] from --target 'h1[:p],h2' or <root>/etc/ceph/ceph.conf
    mon_host (rbdsr.monaddr: the kernel client's view; [] when none or unparsable)."""
    text = target
    if not text:
        try:
            with open(os.path.join(root, "etc/ceph/ceph.conf")) as f:
                for line in f:
                    key, _, value = line.partition("=")
                    if key.strip().replace(" ", "_").replace("-", "_") == "mon_host":
                        text = value.split("#", 1)[0].split(";", 1)[0].strip()
        except (IOError, OSError):
            return []
    return parse_monitors(text or "")


def parse_monitors(text):
    """'a,b:6790 [v2:1.2.3.4:3300/0,v1:1.2.3.4:6789/0]' -> v1 [(host, port)]; [] if unparsable."""
    try:
        return monaddr.parse_mon_host(text, "--target")
    except ConfigError:
        return []


def tcp_reachable(host, port, timeout=3.0):
    """None when a TCP connection opens within timeout, else why not."""
    if port <= 0 or port > 65535:
        return "bad port"
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except (OSError, socket.error) as e:
        return str(e) or type(e).__name__
    s.close()
    return None
