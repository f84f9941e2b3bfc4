"""What the benchmarks share: timing and spread, goals, the machine record, a
throwaway Ceph dev cluster with its server-side counters, and the driver run
as XAPI runs it on a real sm tree (tests/sm/realsm.RealSMTree) or on the
project's stand-in (tests/fakesm), counting the commands it starts.

Bench code only: nothing here ships to dom0.
"""
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, "tools"), os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "sm"),
           os.path.join(ROOT, "tests", "vm")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

MIB = 1 << 20
CMD_TIMEOUT = 600
T_START = time.monotonic()
# today's XCP-ng 8.3 (LVM*SR names): the sm every control-plane bench runs on
SM_TREE = os.environ.get("RBDSR_BENCH_SM_TREE", "xcpng-8.3")


def log(msg, tag="bench"):
    print("[%s %6.1fs] %s" % (tag, time.monotonic() - T_START, msg), file=sys.stderr, flush=True)


def run(argv, env=None, timeout=CMD_TIMEOUT, cwd=None):
    """Run a command (never with a secret in argv); raise with its stderr on failure."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout, env=env, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError("%s failed (rc %d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()[-1500:]))
    return p.stdout


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def child_cpu():
    """CPU seconds (user + system) of every child process reaped so far: unlike wall
    time, barely moved by other jobs on a shared machine."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _quantile(xs, q):
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(times, digits=4):
    """median, min, max, quartiles and every run; `spread` = (p75 - p25) / median."""
    med = statistics.median(times)
    p25, p75 = _quantile(times, 0.25), _quantile(times, 0.75)
    return {"median_s": round(med, digits), "min_s": round(min(times), digits),
            "max_s": round(max(times), digits), "p25_s": round(p25, digits), "p75_s": round(p75, digits),
            "spread": round((p75 - p25) / med, 3) if med else None, "n": len(times),
            "runs_s": [round(t, digits) for t in times]}


def ratio(a, b, digits=3):
    return round(a / b, digits) if b else None


def paired_ratio(num, den):
    """Ratios of runs made side by side (round i of each), with their median and
    range: the spread of the ratio itself, not of either side."""
    rs = [a / b for a, b in zip(num, den) if b]
    if not rs:
        return None
    return {"median": round(statistics.median(rs), 3), "min": round(min(rs), 3), "max": round(max(rs), 3),
            "p25": round(_quantile(rs, 0.25), 3), "p75": round(_quantile(rs, 0.75), 3), "n": len(rs)}


def goal(name, value, op, target, what, spread=None, unit=""):
    """One ratio/time goal of issue 14 with whether this run met it."""
    met = None
    if value is not None:
        met = value <= target if op == "<=" else value >= target
    g = {"goal": name, "value": value, "op": op, "target": target, "met": met, "what": what}
    if unit:
        g["unit"] = unit
    if spread is not None:
        g["spread"] = spread
    if value is not None and not met:
        g["missed_by"] = ("%.1f%%" % (abs(value / target - 1) * 100)) if target else None
    return g


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def git_commit():
    try:
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True,
                               timeout=30).stdout.strip()
        return out + ("+dirty" if dirty else "") if out else None
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("RBDSR_BENCH_COMMIT")


def machine(cluster_state=None):
    cluster_state = cluster_state or {}
    try:
        ceph = run(["ceph", "--version"], timeout=60).strip()
    except Exception as e:  # noqa: BLE001 - informational only
        ceph = "unknown (%s)" % e
    m = {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
         "ceph": ceph, "in_vm": os.environ.get("RBDSR_IN_VM") == "1",
         "objectstore": cluster_state.get("objectstore"), "mgr_modules": cluster_state.get("mgr_modules"),
         "cluster_startup_s": cluster_state.get("startup_seconds"),
         "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg": loadavg()}
    try:
        with open("/proc/meminfo") as f:
            m["mem_total_kib"] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        m["cpu"] = names[0] if names else None
    except OSError:
        pass
    # Inside the VM the guest's load says nothing about the shared host:
    # bench/run-all passes the host's load in through run-in-vm --env.
    if os.environ.get("RBDSR_HOST_LOADAVG"):
        m["host_loadavg_before"] = [float(x) for x in os.environ["RBDSR_HOST_LOADAVG"].split(",")]
    return m


class Cluster(object):
    """A throwaway dev cluster (tools/cephlab, memstore, mgr modules none) with an
    admin librados client and the daemons' own op counters."""

    def __init__(self, objectstore="memstore"):
        from cephlab import cluster as cephlab
        self._lab = cephlab
        self.dir = os.path.join(tempfile.mkdtemp(prefix="rbdsr-bench-"), "c")
        log("starting Ceph dev cluster (%s, mgr modules none) in %s" % (objectstore, self.dir))
        self.state = cephlab.start(self.dir, objectstore=objectstore, timeout=600, mgr_modules="none")
        log("cluster up in %.1fs" % self.state["startup_seconds"])
        self.conf = self.state["conf"]
        self.keyring = self.state["admin_keyring"]
        self.pool = self.state["pool"]
        self.mon_addr = self.state["mon_addr"]
        self.fsid = self.state["fsid"]
        import rados
        self.rados = rados.Rados(conffile=self.conf, conf={"keyring": self.keyring}, rados_id="admin")
        self.rados.connect(timeout=60)
        self.ioctx = self.rados.open_ioctx(self.pool)

    def key(self):
        from rbdsr.secret import read_keyring
        return read_keyring(self.keyring, "client.admin")

    def create(self, name, size):
        import rbd
        rbd.RBD().create(self.ioctx, name, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)

    def create_many(self, names_sizes, window=64):
        """Create images with up to `window` creations in flight (aio is not in the
        bindings: a thread pool does it)."""
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=window) as ex:
            list(ex.map(lambda ns: self.create(ns[0], ns[1]), names_sizes))

    def remove(self, name):
        from krbd_helpers import remove_image  # tests/vm
        remove_image(self.ioctx, name)

    def _perf(self, daemon):
        asok = os.path.join(self.dir, "run", "%s.asok" % daemon)
        return json.loads(run(["ceph", "--admin-daemon", asok, "perf", "dump"], timeout=120))

    def counters(self):
        """Server-side counters: OSD client ops, monitor sessions opened and
        messages received. A kernel map and a librados connect each open a
        monitor session; every object request is an OSD op."""
        osd = self._perf("osd.0")["osd"]
        mon = self._perf("mon.a")
        msgs = sum(v.get("msgr_recv_messages", 0) for k, v in mon.items() if k.startswith("AsyncMessenger"))
        return {"osd_ops": osd["op"], "osd_read_ops": osd["op_r"], "osd_write_ops": osd["op_w"] + osd["op_rw"],
                "mon_sessions": mon["mon"]["session_add"], "mon_messages": msgs}

    def stop(self):
        try:
            self.ioctx.close()
            self.rados.shutdown()
        finally:
            self._lab.stop(self.dir)
            shutil.rmtree(os.path.dirname(self.dir), ignore_errors=True)
            log("cluster stopped")


def counter_delta(before, after):
    return dict((k, after[k] - before[k]) for k in before)


# -- the driver, as XAPI runs it ------------------------------------------------------

_SMLOG_TIMES = (
    ("step", re.compile(r"RBDSR: \w+ done in ([0-9.]+)s")),
    ("connect", re.compile(r"RBDSR: connected to Ceph \(.*\) in ([0-9.]+)s")),
    ("list", re.compile(r"RBDSR: \d+ images in \S+ listed in ([0-9.]+)s")),
    ("map", re.compile(r"RBDSR: \S+ mapped as .* in ([0-9.]+)s")),
    ("unmap", re.compile(r"RBDSR: \S+ unmapped in ([0-9.]+)s")),
)
LVM_COMMANDS = ("lvs", "vgs", "pvs", "lvcreate", "lvremove", "lvchange", "lvrename", "lvresize", "lvextend",
                "lvreduce", "vgchange", "vgcreate", "vgremove", "vgextend", "vgreduce", "pvcreate", "pvremove",
                "pvresize", "lvdisplay", "vgdisplay", "pvdisplay", "lvm", "vgscan", "pvscan", "lvscan")


def smlog_times(text):
    """The driver's own timings of one run, from its SMlog lines (seconds, summed
    per kind), and how many librados connections it made."""
    out = {}
    for kind, rx in _SMLOG_TIMES:
        found = [float(x) for x in rx.findall(text)]
        if found:
            out[kind] = round(sum(found), 4)
    out["librados_connects"] = len(re.findall(r"RBDSR: connected to Ceph", text))
    return out


def count_commands(lines):
    """{'commands', 'lvm_commands', 'by_name'} from RBDSR_EXEC_LOG lines."""
    names = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2:
            names.append(os.path.basename(parts[1]))
    lvm = [n for n in names if n in LVM_COMMANDS]
    by = {}
    for n in names:
        by[n] = by.get(n, 0) + 1
    return {"commands": len(names), "lvm_commands": len(lvm), "by_name": by}


class Result(object):
    def __init__(self, rc, stdout, stderr, smlog, execs):
        import driverharness as h
        self.r = h.Result([], rc, stdout, stderr, smlog)
        self.execs = execs

    def __getattr__(self, name):
        return getattr(self.r, name)


class SMDriver(object):
    """One SR's XAPI records and the calls XAPI makes, on a real sm tree laid out
    as dom0 has it with RBDSR installed by the installer (`real=True`,
    tests/sm/realsm.RealSMTree, sm tree SM_TREE) or on the project's stand-in
    (tests/fakesm flat tree hooked by the installer's code). The key reaches the
    driver as XAPI passes it: a secret uuid resolved from the 0600 stand-in XAPI
    database, never on a command line; every run is checked for it in stdout,
    stderr and SMlog.

    Both trees are byte-compiled first, as dom0's are (sm's RPM ships .pyc; the
    installed RBDSR is compiled on its first run), and the driver runs without
    PYTHONDONTWRITEBYTECODE."""

    def __init__(self, workdir, cluster, real=True, image=None, sr_uuid=None, tree=None):
        import driverharness as h
        self.h = h
        self.real = real
        if tree is not None:
            self.tree = tree
        else:
            if real:
                import realsm
                import smdom0
                self.tree = realsm.RealSMTree(workdir, smdom0.source(SM_TREE))
            else:
                self.tree = h.SMTree(workdir, "flat")
            compile_tree(self.tree)  # once, when this driver made the tree
        self.sm_tree = ("%s (real sm, shape %s)" % (SM_TREE, self.tree.shape.key)) if real \
            else "tests/fakesm flat stand-in"
        self.key = cluster.key().reveal()
        self.uuid = sr_uuid
        self.script = self.tree.script
        self.refs = h.XenAPI.seed(self.tree.db, sr_uuid=sr_uuid, device_config={}, secrets=[self.key],
                                  sr_type=self.SR_TYPE)
        self.dconf = self.device_config(cluster, image)
        if sr_uuid:
            db = h.XenAPI.load_db(self.tree.db)
            for pbd in db["PBD"].values():
                pbd["device_config"] = dict(self.dconf)
            h.XenAPI.save_db(db, self.tree.db)
        self.exec_log = os.path.join(self.tree.workdir, "exec.log")

    SR_TYPE = "lvmoiscsi"

    def device_config(self, cluster, image):
        dconf = {"target": cluster.mon_addr, "port": "6789", "targetIQN": cluster.pool,
                 "chapuser": "admin", "chappassword_secret": self.refs["secrets"][self.key], "timeout": "120"}
        if image:
            dconf["SCSIid"] = image
        return dconf

    def be_this_host(self, inventory="/etc/xensource-inventory"):
        """Make this machine the XAPI database's first host, as real sm looks it up:
        /etc/xensource-inventory names the host and the control domain, whose VM
        record XAPI holds. Only in the VM lab guest (its root is a throwaway snapshot)."""
        if os.environ.get("RBDSR_IN_VM") != "1":
            raise RuntimeError("refusing to write %s outside the VM lab" % inventory)
        import uuid
        h = self.h
        db = h.XenAPI.load_db(self.tree.db)
        master = self.refs["hosts"][0]
        dom0_uuid = str(uuid.uuid4())
        db["VM"]["OpaqueRef:dom0"] = {"uuid": dom0_uuid, "resident_on": master, "is_control_domain": True,
                                      "name_label": "Control domain"}
        h.XenAPI.save_db(db, self.tree.db)
        with open(inventory, "w") as f:
            f.write("PRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\nPLATFORM_VERSION='3.4.0'\n"
                    "INSTALLATION_UUID='%s'\nCONTROL_DOMAIN_UUID='%s'\nPRIMARY_DISK='/dev/vda'\n"
                    % (db["host"][master]["uuid"], dom0_uuid))

    def env(self):
        env = self.tree.env()
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["RBDSR_EXEC_LOG"] = self.exec_log
        if not self.real:
            # the stand-in tree has no sitecustomize of its own: the exec log comes from tests/sm/stubs
            env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "tests", "sm", "stubs"), env["PYTHONPATH"]])
        return env

    def argv(self, call):
        return [self.tree.python, self.script, call]

    def call_xml(self, command, args=None):
        dc = dict(self.dconf, SRmaster="true")
        kw = {"sr_uuid": self.uuid, "sr_ref": self.refs.get("sr")} if self.uuid else {}
        return self.h.method_call(command, dc, host_ref=self.refs["hosts"][0], args=args, **kw)

    def run_call(self, call, timeout=CMD_TIMEOUT):
        """Run one call as XAPI does: argv[1], stdout and stderr on pipes."""
        tree = self.tree
        before = len(tree.read_smlog())
        try:
            os.unlink(self.exec_log)
        except OSError:
            pass
        p = subprocess.Popen(self.argv(call), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, env=self.env(), cwd=tree.workdir)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise RuntimeError("driver did not answer within %ds" % timeout)
        try:
            with open(self.exec_log) as f:
                execs = f.read().splitlines()
        except IOError:
            execs = []
        return Result(p.returncode, out, err, tree.read_smlog()[before:], execs)

    def check(self, command, r, expect_fault=None):
        if self.key in r.stdout + r.stderr + r.smlog:
            raise RuntimeError("cephx key leaked by %s" % command)
        if "Traceback" in r.stdout + r.stderr:
            raise RuntimeError("%s: traceback: %r" % (command, r.r))
        if expect_fault is not None:
            if r.fault_code != expect_fault:
                raise RuntimeError("%s: expected fault %s, got %r\nSMlog:\n%s" % (command, expect_fault, r.r,
                                                                                  r.smlog[-3000:]))
        elif not r.ok:
            raise RuntimeError("%s failed: %r\nSMlog:\n%s" % (command, r.r, r.smlog[-3000:]))
        return r

    def call(self, command, args=None, expect_fault=None):
        return self.check(command, self.run_call(self.call_xml(command, args)), expect_fault)


class SMPlainLVM(SMDriver):
    """sm's own plain LVM SR (type lvm: /opt/xensource/sm/LVMSR of the same real
    tree, no RBDSR involved) on a block device given by path: what users have
    today, for the same work on the same kind of device."""

    SR_TYPE = "lvm"

    def __init__(self, workdir, cluster, tree, sr_uuid, device):
        self._device = device
        SMDriver.__init__(self, workdir, cluster, real=True, sr_uuid=sr_uuid, tree=tree)
        self.script = os.path.join(os.path.dirname(tree.script), "LVMSR")
        self.sm_tree = "%s LVMSR (type lvm)" % SM_TREE

    def device_config(self, cluster, image):
        return {"device": self._device}

    def set_device(self, device):
        import driverharness as h
        self.dconf["device"] = device
        db = h.XenAPI.load_db(self.tree.db)
        for pbd in db["PBD"].values():
            pbd["device_config"] = dict(self.dconf)
        h.XenAPI.save_db(db, self.tree.db)


def make_tree(workdir):
    """The real sm tree SM_TREE laid out as dom0 has it, RBDSR installed by the
    installer, byte-compiled."""
    import realsm
    import smdom0
    tree = realsm.RealSMTree(workdir, smdom0.source(SM_TREE))
    compile_tree(tree)
    return tree


def compile_tree(tree):
    """Byte-compile the tree's sm and the installed RBDSR with the driver's python."""
    where = getattr(tree, "root", None) or tree.pythonpath
    subprocess.run([tree.python, "-m", "compileall", "-q", where], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=CMD_TIMEOUT)


def import_breakdown(stderr_text, rbdsr_roots=("rbdsr", "lvm_helpers", "RBDSR")):
    """Sum `python -X importtime` by who first imported what: RBDSR's modules,
    the Ceph bindings (rados, rbd), the interpreter's site start-up, and the rest
    (sm and the standard library it pulls in). Only top-level entries are summed,
    each with its cumulative time, so nothing counts twice; a module is charged
    to the first importer (sm runs first: RBDSR pays only for what sm did not
    already import). Seconds."""
    out = {"rbdsr": 0, "ceph_bindings": 0, "site": 0, "sm_and_stdlib": 0}
    for line in stderr_text.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m or m.group(3) != " ":
            continue
        cum, name = int(m.group(2)), m.group(4)
        top = name.split(".")[0]
        if top in rbdsr_roots:
            out["rbdsr"] += cum
        elif top in ("rados", "rbd"):
            out["ceph_bindings"] += cum
        elif top in ("site", "sitecustomize", "encodings", "_frozen_importlib_external", "zipimport",
                     "codecs", "io", "abc", "_codecs", "_io", "_abc", "_signal", "posix", "time", "marshal",
                     "winreg", "_thread", "_warnings", "_weakref", "_imp"):
            out["site"] += cum
        else:
            out["sm_and_stdlib"] += cum
    return dict((k, round(v / 1e6, 4)) for k, v in out.items())


def write_doc(doc, out):
    doc["wall_s"] = round(time.monotonic() - T_START, 1)
    text = json.dumps(doc, indent=1, sort_keys=True)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    print(text)
