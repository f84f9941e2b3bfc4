#!/usr/bin/python3
"""Control-plane benchmark: the driver's real entry point (sm's LVMoISCSISR
script + the RBDSR hook, run as XAPI runs it, via tests/driverharness.py on the
tests/fakesm flat tree) against doing the same by hand, side by side in one run.

--part host (no kernel RBD needed; run on the host with .venv/bin/python):
  driver_probe     sr_probe wizard step 2 (target + pool, no SCSIid) on a pool of
                   N images: LUN XML + ConfigSCSIid, one driver process per run
  rbd_cli          `rbd ls -l --format json` on the same pool
  librbd_backend   rbdsr.backends LibrbdBackend.list_images, already connected
  librbd_backend_connect  the same including open_backend() (connect) and close()
  python_startup   `python3 -c "import rados, rbd"`: the floor of any driver call

--part vm (real krbd + LVM; run in the VM lab):
  sr_create  driver vs `rbd create` + `rbd device map` + pvcreate + vgcreate + `rbd device unmap`
  sr_attach  driver vs `rbd device map` + `vgchange -ay VG`
  sr_detach  driver vs `vgchange -an VG` + `rbd device unmap`
  (sr_attach_first: the first driver attach after create, which also creates the MGT LV)

Each part starts its own Ceph dev cluster (tools/cephlab, memstore, mgr modules
none), checks that every method produced the same answer / state, cleans up,
and prints one JSON object {"bench", "machine", "params", "results", "ratios"}
(median seconds; ratios driver/by-hand). Progress goes to stderr.

    .venv/bin/python bench/bench_controlplane.py --part host [--images 1000] [--repeat 5]
    tools/vmlab/run-in-vm -- python3 bench/bench_controlplane.py --part vm [--repeat 3] --out /results/cp-vm.json
"""
import argparse
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
for _p in (ROOT, os.path.join(ROOT, "tools"), os.path.join(ROOT, "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

MIB = 1 << 20
CMD_TIMEOUT = 300
T_START = time.monotonic()


def log(msg):
    print("[cp-bench %6.1fs] %s" % (time.monotonic() - T_START, msg), file=sys.stderr, flush=True)


def run(argv, env=None, timeout=CMD_TIMEOUT):
    """Run a command (never with a secret in argv); raise with its stderr on failure."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError("%s failed (rc %d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()[-1500:]))
    return p.stdout


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def summary(times):
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "runs_s": [round(t, 4) for t in times]}


def ratio(a, b):
    return round(a / b, 2) if b else None


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def machine(cluster_state):
    try:
        ceph = run(["ceph", "--version"], timeout=60).strip()
    except Exception as e:  # noqa: BLE001 - informational only
        ceph = "unknown (%s)" % e
    m = {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
         "ceph": ceph, "in_vm": os.environ.get("RBDSR_IN_VM") == "1",
         "objectstore": cluster_state.get("objectstore"), "mgr_modules": cluster_state.get("mgr_modules"),
         "cluster_startup_s": cluster_state.get("startup_seconds"),
         "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        with open("/proc/meminfo") as f:
            m["mem_total_kib"] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    # Inside the VM the guest's load says nothing about the shared host:
    # bench/run-all passes the host's load in through run-in-vm --env.
    if os.environ.get("RBDSR_HOST_LOADAVG"):
        m["host_loadavg_before"] = [float(x) for x in os.environ["RBDSR_HOST_LOADAVG"].split(",")]
    return m


class Cluster(object):
    """A throwaway dev cluster (tools/cephlab) with an admin librados client."""

    def __init__(self, objectstore="memstore"):
        from cephlab import cluster as cephlab
        self._lab = cephlab
        self.dir = os.path.join(tempfile.mkdtemp(prefix="rbdsr-bench-cp-"), "c")
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

    def remove(self, name):
        import rbd
        deadline = time.monotonic() + 60
        while True:
            try:
                rbd.RBD().remove(self.ioctx, name)
                return
            except rbd.ImageNotFound:
                return
            except rbd.ImageBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self):
        try:
            self.ioctx.close()
            self.rados.shutdown()
        finally:
            self._lab.stop(self.dir)
            shutil.rmtree(os.path.dirname(self.dir), ignore_errors=True)
            log("cluster stopped")


class Driver(object):
    """One SR's XAPI records in a fakesm flat tree, and the calls XAPI makes."""

    def __init__(self, workdir, cluster, image=None, sr_uuid=None):
        import driverharness as h
        self.h = h
        self.tree = h.SMTree(workdir, "flat")
        self.key = cluster.key().reveal()
        self.uuid = sr_uuid
        # The key reaches the driver as XAPI passes it: a secret uuid in device-config,
        # resolved from the (0600) XAPI database; never on the command line.
        self.refs = self.tree.seed(sr_uuid=sr_uuid, device_config={}, secrets=[self.key])
        self.dconf = {"target": cluster.mon_addr, "port": "6789", "targetIQN": cluster.pool,
                      "chapuser": "admin", "chappassword_secret": self.refs["secrets"][self.key],
                      "timeout": "120"}
        if image:
            self.dconf["SCSIid"] = image
        if sr_uuid:
            db = h.XenAPI.load_db(self.tree.db)
            for pbd in db["PBD"].values():
                pbd["device_config"] = dict(self.dconf)
            h.XenAPI.save_db(db, self.tree.db)

    def _run_stderr_to_file(self, call):
        """tree.run, but the driver's stderr goes to a file, not a pipe: librados
        leaves fd 2 non-blocking, so a big wizard answer written to a pipe is cut at
        64 KiB when the reader is not fast enough (see the host part's
        stderr_pipe_check)."""
        tree = self.tree
        before = len(tree.read_smlog())
        argv = [tree.python, tree.script, call]
        with tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                               universal_newlines=True, env=tree.env(), cwd=tree.workdir, timeout=CMD_TIMEOUT)
            err.seek(0)
            text = err.read()
        return self.h.Result(argv, p.returncode, p.stdout, text, tree.read_smlog()[before:])

    def call(self, command, args=None, expect_fault=None, stderr_to_file=False):
        dc = dict(self.dconf, SRmaster="true")
        kw = {"sr_uuid": self.uuid, "sr_ref": self.refs.get("sr")} if self.uuid else {}
        c = self.h.method_call(command, dc, host_ref=self.refs["hosts"][0], args=args, **kw)
        r = self._run_stderr_to_file(c) if stderr_to_file else self.tree.run(c, timeout=CMD_TIMEOUT)
        out = r.stdout + r.stderr + r.smlog
        if self.key in out:
            raise RuntimeError("cephx key leaked by %s" % command)
        if "Traceback" in r.stdout + r.stderr:
            raise RuntimeError("%s: traceback: %r" % (command, r))
        if expect_fault is not None:
            if r.fault_code != expect_fault:
                raise RuntimeError("%s: expected fault %s, got %r" % (command, expect_fault, r))
        elif not r.ok:
            raise RuntimeError("%s failed: %r" % (command, r))
        return r


_SMLOG_TIMES = (
    ("step", re.compile(r"RBDSR: \w+ done in ([0-9.]+)s")),
    ("connect", re.compile(r"RBDSR: connected to Ceph \(.*\) in ([0-9.]+)s")),
    ("list", re.compile(r"RBDSR: \d+ images in \S+ listed in ([0-9.]+)s")),
    ("map", re.compile(r"RBDSR: \S+ mapped as .* in ([0-9.]+)s")),
    ("unmap", re.compile(r"RBDSR: \S+ unmapped in ([0-9.]+)s")),
)


def smlog_times(text):
    """The driver's own timings of one run, from its SMlog lines (seconds, summed per kind,
    plus the count of commands sm logged):
    'step' sums RBDSR's entry points in process (load + the command); the rest of a run's wall time is the
    interpreter, imports, sm's SR load and XML-RPC."""
    out = {}
    for kind, rx in _SMLOG_TIMES:
        found = [float(x) for x in rx.findall(text)]
        if found:
            out[kind] = sum(found)
    # sm's util.pread logs each command it runs as a list (RBDSR's own lvm_helpers calls are not logged)
    out["sm_commands"] = len(re.findall(r"SM: \[\d+\] \['", text))
    return out


def smlog_summary(runs):
    kinds = sorted(set(k for r in runs for k in r))
    return dict((k, round(statistics.median([r.get(k, 0.0) for r in runs]), 3)) for k in kinds)


# -- host part -----------------------------------------------------------------

def host_part(args):
    from rbdsr.backends import open_backend
    from rbdsr.config import TargetConfig
    from rbdsr.smglue import probexml

    load_before = loadavg()
    cluster = Cluster()
    work = tempfile.mkdtemp(prefix="rbdsr-bench-cp-host-")
    try:
        log("creating %d images with librbd" % args.images)
        t_create, _ = timed(lambda: [cluster.create("bench-%05d" % i, (4 + i % 61) * MIB)
                                     for i in range(args.images)])
        log("created in %.1fs" % t_create)
        drv = Driver(os.path.join(work, "sm"), cluster)
        cfg = TargetConfig.from_dconf({"target": cluster.mon_addr, "targetIQN": cluster.pool,
                                       "chapuser": "admin", "chappassword": drv.key, "timeout": "120"})
        backend = open_backend(cfg)

        probe_smlog = []

        def driver_probe():
            r = drv.call("sr_probe", expect_fault=107, stderr_to_file=True)  # ConfigSCSIid, after the LUN XML
            probe_smlog.append(smlog_times(r.smlog))
            return sorted((lun["SCSIid"], int(lun["size"])) for lun in probexml.parse_luns(r.stderr))

        def rbd_cli():
            out = run(["rbd", "--conf", cluster.conf, "--keyring", cluster.keyring, "--id", "admin",
                       "ls", "-l", "--format", "json", "--pool", cluster.pool])
            return sorted((e["image"], e["size"]) for e in json.loads(out) if "snapshot" not in e)

        def librbd_backend():
            return sorted((i.name, i.size) for i in backend.list_images(cluster.pool))

        def librbd_backend_connect():
            b = open_backend(cfg)
            try:
                return sorted((i.name, i.size) for i in b.list_images(cluster.pool))
            finally:
                b.close()

        def python_startup():
            run([sys.executable, "-c", "import rados, rbd"])

        methods = [("driver_probe", driver_probe), ("rbd_cli", rbd_cli), ("librbd_backend", librbd_backend),
                   ("librbd_backend_connect", librbd_backend_connect), ("python_startup", python_startup)]
        times = dict((name, []) for name, _ in methods)
        answers = {}
        for rnd in range(args.repeat):
            # Interleaved, order rotated each round: load drift hits every method alike.
            k = rnd % len(methods)
            for name, fn in methods[k:] + methods[:k]:
                dt, value = timed(fn)
                times[name].append(dt)
                if value is not None:
                    answers.setdefault(name, value)
                    if value != answers[name]:
                        raise RuntimeError("%s gave a different answer in round %d" % (name, rnd))
            log("round %d/%d: %s" % (rnd + 1, args.repeat,
                                     ", ".join("%s %.2fs" % (n, times[n][-1]) for n, _ in methods)))
        backend.close()
        # The same call as XAPI makes it, stderr on a pipe (tests/driverharness): does the
        # whole LUN XML arrive?
        r = drv.call("sr_probe", expect_fault=107)
        try:
            piped = len(probexml.parse_luns(r.stderr))
        except Exception:  # noqa: BLE001 - a cut document does not parse
            piped = None
        pipe_check = {"luns_expected": args.images, "luns_parsed": piped, "stderr_bytes": len(r.stderr),
                      "complete": piped == args.images}
        log("stderr on a pipe: %r" % pipe_check)
        reference = answers["librbd_backend"]
        if len(reference) != args.images:
            raise RuntimeError("listed %d images, created %d" % (len(reference), args.images))
        identical = all(a == reference for a in answers.values())
        if not identical:
            raise RuntimeError("the methods disagree: %s" % dict((n, len(a)) for n, a in answers.items()))
        results = [dict({"op": "probe_step2", "method": name, "images": args.images}, **summary(t))
                   for name, t in times.items()]
        results[0]["driver_smlog_median_s"] = smlog_summary(probe_smlog)
        med = dict((name, statistics.median(t)) for name, t in times.items())
        doc = {
            "bench": "controlplane_host",
            "machine": machine(cluster.state),
            "params": {"images": args.images, "repeat": args.repeat, "create_images_s": round(t_create, 2),
                       "sm_tree": "tests/fakesm flat + RBDSR hook", "all_answers_identical": identical,
                       "driver_stderr": "file (see stderr_pipe_check)"},
            "stderr_pipe_check": pipe_check,
            "results": results,
            "ratios": {
                "probe_driver_over_rbd_cli": ratio(med["driver_probe"], med["rbd_cli"]),
                "probe_driver_over_librbd_backend": ratio(med["driver_probe"], med["librbd_backend"]),
                "probe_driver_over_librbd_backend_connect": ratio(med["driver_probe"],
                                                                  med["librbd_backend_connect"]),
                "rbd_cli_over_librbd_backend": ratio(med["rbd_cli"], med["librbd_backend"]),
                "probe_driver_minus_python_startup_s": round(med["driver_probe"] - med["python_startup"], 3),
            },
        }
        doc["machine"]["loadavg_before"] = load_before
        doc["machine"]["loadavg_after"] = loadavg()
        return doc
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


# -- VM part -------------------------------------------------------------------

MASTER_LVM = "/etc/lvm/master"


def setup_lvm():
    """The rbd device type in the LVM config sm's master uses (/etc/lvm/master, as the
    installer sets up on dom0); the by-hand commands use the same config. Returns a
    cleanup function."""
    from lvm_helpers import lvmconf
    created = not os.path.exists(MASTER_LVM)
    if created:
        os.makedirs(MASTER_LVM)
        shutil.copy("/etc/lvm/lvm.conf", MASTER_LVM)
    conf = os.path.join(MASTER_LVM, "lvm.conf")
    if not lvmconf.has_rbd_types(conf):
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(lvmconf.add_rbd_types(text))
    os.environ["LVM_SYSTEM_DIR"] = MASTER_LVM
    return (lambda: shutil.rmtree(MASTER_LVM, ignore_errors=True)) if created else (lambda: None)


class ByHand(object):
    """What an admin would type: the rbd CLI (key from the keyring file) and LVM."""

    def __init__(self, cluster):
        self.c = cluster
        self.rbd = ["rbd", "--conf", cluster.conf, "--keyring", cluster.keyring, "--id", "admin"]

    def spec(self, image):
        return "%s/%s" % (self.c.pool, image)

    def create(self, image, vg, size):
        run(self.rbd + ["create", "--size", "%dM" % (size // MIB), "--image-feature", "layering",
                        self.spec(image)])
        dev = run(self.rbd + ["device", "map", self.spec(image)]).strip()
        run(["pvcreate", "-y", dev])
        run(["vgcreate", "-y", vg, dev])
        run(self.rbd + ["device", "unmap", self.spec(image)])

    def attach(self, image, vg):
        run(self.rbd + ["device", "map", self.spec(image)])
        run(["vgchange", "-ay", vg])

    def detach(self, image, vg):
        run(["vgchange", "-an", vg])
        run(self.rbd + ["device", "unmap", self.spec(image)])


def vm_part(args):
    import uuid

    from rbdsr import krbd

    if os.environ.get("RBDSR_IN_VM") != "1":
        raise SystemExit("--part vm needs the VM lab's kernel (krbd, device-mapper): run it with\n"
                         "  tools/vmlab/run-in-vm -- python3 bench/bench_controlplane.py --part vm")
    load_before = loadavg()
    undo_lvm = setup_lvm()
    try:
        cluster = Cluster()
    except BaseException:
        undo_lvm()
        raise
    work = tempfile.mkdtemp(prefix="rbdsr-bench-cp-vm-")
    hand = ByHand(cluster)
    images = []
    size = args.size_mib * MIB
    t = dict((k, []) for k in ("driver_sr_create", "driver_sr_attach_first", "driver_sr_attach",
                               "driver_sr_detach", "hand_sr_create", "hand_sr_attach", "hand_sr_detach",
                               "python_startup"))
    sm = dict((k, []) for k in t if k.startswith("driver_"))

    def mapped(image):
        return krbd.find_mapped(krbd.ImageId(cluster.fsid, cluster.pool, "", image)) is not None

    def expect(cond, what):
        if not cond:
            raise RuntimeError("state check failed: " + what)

    def vg_exists(vg):
        return subprocess.run(["vgs", vg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=CMD_TIMEOUT).returncode == 0

    def driver_round(i):
        image = "bench-cp-drv-%d-%s" % (i, uuid.uuid4().hex[:6])
        images.append(image)
        d = Driver(os.path.join(work, "sm-%d" % i), cluster, image=image, sr_uuid=str(uuid.uuid4()))
        vg = "VG_XenStorage-" + d.uuid
        for step, command, args_, want_mapped in (("driver_sr_create", "sr_create", [str(size)], False),
                                                  ("driver_sr_attach_first", "sr_attach", None, True),
                                                  ("driver_sr_detach", "sr_detach", None, False),
                                                  ("driver_sr_attach", "sr_attach", None, True),
                                                  ("driver_sr_detach", "sr_detach", None, False)):
            dt, r = timed(lambda c=command, a=args_: d.call(c, args=a))
            t[step].append(dt)
            sm[step].append(smlog_times(r.smlog))
            expect(mapped(image) == want_mapped, "%s: mapped=%s" % (command, not want_mapped))
            if want_mapped:  # outside the timing: the attached device carries the SR's VG
                expect(vg_exists(vg), "driver VG %s after %s" % (vg, command))
            log("round %d driver %s %.2fs" % (i + 1, command, dt))
        keep = os.environ.get("RBDSR_VM_RESULTS")
        if keep and os.path.isdir(keep):  # the last round's driver log, for reading the timings
            shutil.copy(d.tree.smlog, os.path.join(keep, "controlplane_vm-SMlog"))

    def hand_round(i):
        image = "bench-cp-hand-%d-%s" % (i, uuid.uuid4().hex[:6])
        images.append(image)
        vg = "bench_hand_vg_%d" % i
        for step, fn, want_mapped in (("hand_sr_create", lambda: hand.create(image, vg, size), False),
                                      ("hand_sr_attach", lambda: hand.attach(image, vg), True),
                                      ("hand_sr_detach", lambda: hand.detach(image, vg), False)):
            dt, _ = timed(fn)
            t[step].append(dt)
            expect(mapped(image) == want_mapped, "%s: mapped=%s" % (step, not want_mapped))
            if want_mapped:
                expect(vg_exists(vg), "VG %s after %s" % (vg, step))
            log("round %d by hand %s %.2fs" % (i + 1, step[5:], dt))

    try:
        for i in range(args.repeat):
            # alternate which goes first, so drift hits both alike
            for fn in ((driver_round, hand_round) if i % 2 == 0 else (hand_round, driver_round)):
                fn(i)
            t["python_startup"].append(timed(lambda: run(["python3", "-c", "pass"]))[0])
        ops = (("sr_create", "driver_sr_create", "hand_sr_create"),
               ("sr_attach", "driver_sr_attach", "hand_sr_attach"),
               ("sr_detach", "driver_sr_detach", "hand_sr_detach"))
        results = []
        ratios = {}
        for op, drv_key, hand_key in ops:
            results.append(dict({"op": op, "method": "driver", "driver_smlog_median_s": smlog_summary(sm[drv_key])},
                                **summary(t[drv_key])))
            results.append(dict({"op": op, "method": "by_hand"}, **summary(t[hand_key])))
            ratios[op + "_driver_over_by_hand"] = ratio(statistics.median(t[drv_key]),
                                                        statistics.median(t[hand_key]))
        results.append(dict({"op": "sr_attach_first", "method": "driver",
                             "note": "first attach after create: also creates the MGT LV",
                             "driver_smlog_median_s": smlog_summary(sm["driver_sr_attach_first"])},
                            **summary(t["driver_sr_attach_first"])))
        results.append(dict({"op": "python_startup", "method": "python3 -c pass"}, **summary(t["python_startup"])))
        ratios["sr_attach_first_driver_over_by_hand"] = ratio(statistics.median(t["driver_sr_attach_first"]),
                                                              statistics.median(t["hand_sr_attach"]))
        doc = {
            "bench": "controlplane_vm",
            "machine": machine(cluster.state),
            "params": {"repeat": args.repeat, "image_size_mib": args.size_mib,
                       "sm_tree": "tests/fakesm flat + RBDSR hook",
                       "by_hand": {"sr_create": "rbd create + rbd device map + pvcreate + vgcreate + "
                                                "rbd device unmap",
                                   "sr_attach": "rbd device map + vgchange -ay",
                                   "sr_detach": "vgchange -an + rbd device unmap"}},
            "results": results,
            "ratios": ratios,
        }
        doc["machine"]["loadavg_before"] = load_before
        doc["machine"]["loadavg_after"] = loadavg()
        return doc
    finally:
        for vg in ["bench_hand_vg_%d" % i for i in range(args.repeat)]:
            subprocess.run(["vgchange", "-an", vg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=CMD_TIMEOUT)
        for image in images:
            try:
                krbd.unmap(krbd.ImageId(cluster.fsid, cluster.pool, "", image), force=True, timeout=60)
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                log("unmap %s: %s" % (image, e))
            try:
                cluster.remove(image)
            except Exception as e:  # noqa: BLE001
                log("remove %s: %s" % (image, e))
        cluster.stop()
        undo_lvm()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("host", "vm"), required=True)
    ap.add_argument("--images", type=int, default=1000, help="host: images in the probed pool")
    ap.add_argument("--repeat", type=int, default=None, help="runs per method (host 5, vm 3)")
    ap.add_argument("--size-mib", type=int, default=256, help="vm: SR image size")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    if args.repeat is None:
        args.repeat = 5 if args.part == "host" else 3
    doc = host_part(args) if args.part == "host" else vm_part(args)
    doc["wall_s"] = round(time.monotonic() - T_START, 1)
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
