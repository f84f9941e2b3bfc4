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
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CMD_TIMEOUT, MIB, SM_TREE, Cluster, SMDriver, SMPlainLVM, child_cpu, make_tree, count_commands,  # noqa: E402
                      counter_delta,
                      goal, import_breakdown, loadavg, machine, paired_ratio, ratio, run, smlog_times,
                      summary, timed, write_doc)
from benchlib import log as _log  # noqa: E402


def log(msg):
    _log(msg, "cp-bench")


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
        real = SMDriver(os.path.join(work, "real"), cluster, real=True)
        standin = SMDriver(os.path.join(work, "standin"), cluster, real=False)
        tree_env = real.env()
        cfg = TargetConfig.from_dconf({"target": cluster.mon_addr, "targetIQN": cluster.pool,
                                       "chapuser": "admin", "chappassword": real.key, "timeout": "120"})
        backend = open_backend(cfg)
        sizes = sorted(int(x) for x in args.images.split(","))
        created = 0
        results, ratios, goals, per_size = [], {}, [], {}
        calls = {real: real.call_xml("sr_probe"), standin: standin.call_xml("sr_probe")}
        probe_call = calls[real]
        for n_images in sizes:
            log("creating images %d..%d with librbd" % (created, n_images - 1))
            todo = [("bench-%05d" % i, (4 + i % 61) * MIB) for i in range(created, n_images)]
            t_create, _ = timed(lambda todo=todo: cluster.create_many(todo))
            created = n_images
            log("created in %.1fs" % t_create)
            repeat = args.repeat if n_images == sizes[0] else args.repeat_large
            smlogs = []

            def probe(drv, keep=False, smlogs=smlogs):
                # As XAPI runs it: stdout and stderr on pipes; the whole LUN XML must parse back.
                r = drv.check("sr_probe", drv.run_call(calls[drv]), expect_fault=107)
                if keep:
                    smlogs.append(smlog_times(r.smlog))
                return sorted((lun["SCSIid"], int(lun["size"])) for lun in probexml.parse_luns(r.stderr))

            def rbd_cli():
                out = run(["rbd", "--conf", cluster.conf, "--keyring", cluster.keyring, "--id", "admin",
                           "ls", "-l", "--format", "json", "--pool", cluster.pool])
                return sorted((e["image"], e["size"]) for e in json.loads(out) if "snapshot" not in e)

            def librbd_backend():
                return sorted((i.name, i.size) for i in backend.list_images(cluster.pool))

            def python_startup():
                run([real.tree.python, "-c", "pass"], env=tree_env)

            def sm_imports():
                run([real.tree.python, "-c", "import %s, SRCommand" % real.tree.shape.iscsi_module], env=tree_env)

            methods = [("driver_probe", lambda: probe(real, True)), ("driver_probe_standin", lambda: probe(standin)),
                       ("rbd_cli", rbd_cli), ("librbd_backend", librbd_backend),
                       ("python_startup", python_startup), ("sm_imports", sm_imports)]
            probe(real)  # warm: the first run writes the installed RBDSR's .pyc, as on dom0
            probe(standin)
            times = dict((name, []) for name, _ in methods)
            cpu = dict((name, []) for name, _ in methods)
            answers = {}
            for rnd in range(repeat):
                # Interleaved, order rotated each round: load drift hits every method alike.
                k = rnd % len(methods)
                for name, fn in methods[k:] + methods[:k]:
                    c0 = child_cpu()
                    dt, value = timed(fn)
                    times[name].append(dt)
                    cpu[name].append(child_cpu() - c0)
                    if value is not None:
                        answers.setdefault(name, value)
                        if value != answers[name]:
                            raise RuntimeError("%s gave a different answer in round %d" % (name, rnd))
                log("%d images, round %d/%d: %s" % (n_images, rnd + 1, repeat,
                                                    ", ".join("%s %.2fs" % (n, times[n][-1]) for n, _ in methods)))
            reference = answers["librbd_backend"]
            if len(reference) != n_images or any(a != reference for a in answers.values()):
                raise RuntimeError("the methods disagree: %s" % dict((n, len(a)) for n, a in answers.items()))
            # where the driver process's time goes: one more run under -X importtime (not timed)
            p = subprocess.run([real.tree.python, "-X", "importtime", real.tree.script, probe_call],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               universal_newlines=True, env=real.env(), cwd=real.tree.workdir, timeout=CMD_TIMEOUT)
            imports = import_breakdown(p.stderr)
            for name, t in times.items():
                res = dict({"op": "probe_step2", "method": name, "images": n_images}, **summary(t))
                if name != "librbd_backend":  # in process: no child CPU to count
                    res["child_cpu_median_s"] = round(statistics.median(cpu[name]), 4)
                results.append(res)
            results[-len(times)]["driver_smlog_median_s"] = smlog_summary(smlogs)
            med = dict((name, statistics.median(t)) for name, t in times.items())
            sfx = "_%d" % n_images
            r = {
                "driver_over_rbd_cli": paired_ratio(times["driver_probe"], times["rbd_cli"]),
                "driver_standin_over_rbd_cli": paired_ratio(times["driver_probe_standin"], times["rbd_cli"]),
                "rbd_cli_over_driver": ratio(med["rbd_cli"], med["driver_probe"], 1),
                "driver_over_librbd_backend": ratio(med["driver_probe"], med["librbd_backend"], 1),
                "rbd_cli_over_driver_cpu": ratio(statistics.median(cpu["rbd_cli"]),
                                                 statistics.median(cpu["driver_probe"]), 1),
                "driver_minus_sm_imports_s": round(med["driver_probe"] - med["sm_imports"], 3),
                "sm_imports_minus_python_startup_s": round(med["sm_imports"] - med["python_startup"], 3),
            }
            ratios["probe" + sfx] = r
            per_size[n_images] = {"create_images_s": round(t_create, 1), "repeat": repeat,
                                  "import_time_s": imports}
            if n_images == 1000 or n_images == sizes[0]:
                # the time goal is for 1,000 images; larger pools show how it grows
                goals.append(goal("wizard_step2_driver_median_s" + sfx, round(med["driver_probe"], 3), "<=", 0.5,
                                  "driver process end to end (real sm %s), %d images" % (SM_TREE, n_images),
                                  spread=summary(times["driver_probe"])["spread"], unit="s"))
            goals.append(goal("wizard_step2_rbd_cli_over_driver" + sfx, r["rbd_cli_over_driver"], ">=", 10,
                              "`rbd ls -l` time / driver time, same run, %d images" % n_images,
                              spread=r["driver_over_rbd_cli"]))
        backend.close()
        doc = {
            "bench": "controlplane_host",
            "machine": machine(cluster.state),
            "params": {"images": sizes, "repeat": args.repeat, "repeat_large": args.repeat_large,
                       "sm_tree": real.sm_tree, "second_column": standin.sm_tree,
                       "driver_python": real.tree.python, "byte_compiled": True,
                       "driver_stderr": "pipe, as XAPI reads it; every run's LUN XML parsed back and compared",
                       "per_size": per_size, "all_answers_identical": True},
            "results": results,
            "ratios": ratios,
            "goals": goals,
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
    """What an admin would type: the rbd CLI (key from the keyring file) and LVM.
    Each method returns the commands it ran."""

    def __init__(self, cluster):
        self.c = cluster
        self.rbd = ["rbd", "--conf", cluster.conf, "--keyring", cluster.keyring, "--id", "admin"]

    def spec(self, image):
        return "%s/%s" % (self.c.pool, image)

    def _do(self, *cmds):
        for argv in cmds:
            run(argv)
        return [c[0] for c in cmds]

    def create(self, image, vg, size):
        ran = self._do(self.rbd + ["create", "--size", "%dM" % (size // MIB), "--image-feature", "layering",
                                   self.spec(image)])
        dev = run(self.rbd + ["device", "map", self.spec(image)]).strip()
        return ran + ["rbd"] + self._do(["pvcreate", "-y", dev], ["vgcreate", "-y", vg, dev],
                                        self.rbd + ["device", "unmap", self.spec(image)])

    def attach(self, image, vg):
        return self._do(self.rbd + ["device", "map", self.spec(image)], ["vgchange", "-ay", vg])

    def detach(self, image, vg):
        return self._do(["vgchange", "-an", vg], self.rbd + ["device", "unmap", self.spec(image)])


OPS = ("sr_create", "sr_attach", "sr_detach")
SYSTEMCTL = "/usr/bin/systemctl"  # the path sm runs


def vm_part(args):
    import uuid

    from rbdsr import krbd

    if os.environ.get("RBDSR_IN_VM") != "1":
        raise SystemExit("--part vm needs the VM lab's kernel (krbd, device-mapper): run it with\n"
                         "  tools/vmlab/run-in-vm -- python3 bench/bench_controlplane.py --part vm")
    load_before = loadavg()
    undo_lvm = setup_lvm()
    if not os.path.exists(SYSTEMCTL):
        # sm asks systemd about its GC unit on attach/detach; the guest has no systemd
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vm-systemctl"), SYSTEMCTL)
    try:
        cluster = Cluster()
    except BaseException:
        undo_lvm()
        raise
    work = tempfile.mkdtemp(prefix="rbdsr-bench-cp-vm-")
    hand = ByHand(cluster)
    images = []
    hand_vgs = []
    size = args.size_mib * MIB
    keys = (["driver_" + op for op in OPS] + ["driver_sr_attach_first"] + ["hand_" + op for op in OPS]
            + ["smlvm_" + op for op in OPS] + ["smlvm_sr_attach_first"])
    t = dict((k, []) for k in keys + ["python_startup"])
    sm = dict((k, []) for k in keys if k.startswith("driver_"))
    counts = {}  # op -> commands, LVM commands, Ceph round trips (first round: they do not vary)
    drivers = []

    def mapped(image):
        return krbd.find_mapped(krbd.ImageId(cluster.fsid, cluster.pool, "", image)) is not None

    def expect(cond, what):
        if not cond:
            raise RuntimeError("state check failed: " + what)

    def vg_exists(vg):
        return subprocess.run(["vgs", vg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=CMD_TIMEOUT).returncode == 0

    def measure(key, fn, first):
        before = cluster.counters() if first else None
        dt, value = timed(fn)
        t[key].append(dt)
        if first:
            counts.setdefault(key, {}).update(counter_delta(before, cluster.counters()))
        return value

    def driver_round(i, tree):
        first = i == 0
        image = "bench-cp-drv-%d-%s" % (i, uuid.uuid4().hex[:6])
        images.append(image)
        d = SMDriver(os.path.join(work, "sm-%d" % i), cluster, real=True, image=image, sr_uuid=str(uuid.uuid4()),
                     tree=tree)
        d.be_this_host()
        drivers.append(d)
        vg = "VG_XenStorage-" + d.uuid
        for step, command, args_, want_mapped in (("driver_sr_create", "sr_create", [str(size)], False),
                                                  ("driver_sr_attach_first", "sr_attach", None, True),
                                                  ("driver_sr_detach", "sr_detach", None, False),
                                                  ("driver_sr_attach", "sr_attach", None, True),
                                                  ("driver_sr_detach", "sr_detach", None, False)):
            r = measure(step, lambda c=command, a=args_: d.call(c, args=a), first and step not in counts)
            sm[step].append(smlog_times(r.smlog))
            if first and "commands" not in counts[step]:
                counts[step].update(count_commands(r.execs))
                counts[step]["librados_connects"] = smlog_times(r.smlog)["librados_connects"]
            expect(mapped(image) == want_mapped, "%s: mapped=%s" % (command, not want_mapped))
            if want_mapped:  # outside the timing: the attached device carries the SR's VG
                expect(vg_exists(vg), "driver VG %s after %s" % (vg, command))
            log("round %d driver %s %.2fs" % (i + 1, command, t[step][-1]))
        return d.tree

    def smlvm_round(i, tree):
        """sm's plain LVM SR (type lvm) on the same kind of device, mapped with the rbd CLI."""
        first = i == 0
        image = "bench-cp-lvm-%d-%s" % (i, uuid.uuid4().hex[:6])
        images.append(image)
        d = SMPlainLVM(os.path.join(work, "lvm-%d" % i), cluster, tree, str(uuid.uuid4()), "/dev/null")
        d.be_this_host()
        vg = "VG_XenStorage-" + d.uuid
        spec = hand.spec(image)
        execs = []

        def sm(command, args_=None):
            r = d.call(command, args=args_)
            execs.extend(r.execs)

        def map_():
            d.set_device(run(hand.rbd + ["device", "map", spec]).strip())

        def create():
            run(hand.rbd + ["create", "--size", "%dM" % (size // MIB), "--image-feature", "layering", spec])
            map_()
            sm("sr_create", [str(size)])
            run(hand.rbd + ["device", "unmap", spec])
            return ["rbd", "rbd", "rbd"]

        def attach():
            map_()
            sm("sr_attach")
            return ["rbd"]

        def detach():
            sm("sr_detach")
            run(hand.rbd + ["device", "unmap", spec])
            return ["rbd"]

        for step, fn, want_mapped in (("smlvm_sr_create", create, False), ("smlvm_sr_attach_first", attach, True),
                                      ("smlvm_sr_detach", detach, False), ("smlvm_sr_attach", attach, True),
                                      ("smlvm_sr_detach", detach, False)):
            del execs[:]
            count = first and step not in counts
            rbd_cmds = measure(step, fn, count)
            if count:
                c = count_commands(execs)
                c["commands"] += len(rbd_cmds)
                c["by_name"]["rbd"] = len(rbd_cmds)
                c["librados_connects"] = len(rbd_cmds)
                counts[step].update(c)
            expect(mapped(image) == want_mapped, "%s: mapped=%s" % (step, not want_mapped))
            if want_mapped:
                expect(vg_exists(vg), "sm LVM SR VG %s after %s" % (vg, step))
            log("round %d sm LVM SR %s %.2fs" % (i + 1, step[6:], t[step][-1]))

    def hand_round(i, _tree):
        first = i == 0
        image = "bench-cp-hand-%d-%s" % (i, uuid.uuid4().hex[:6])
        images.append(image)
        vg = "bench_hand_vg_%d" % i
        hand_vgs.append(vg)
        for step, fn, want_mapped in (("hand_sr_create", lambda: hand.create(image, vg, size), False),
                                      ("hand_sr_attach", lambda: hand.attach(image, vg), True),
                                      ("hand_sr_detach", lambda: hand.detach(image, vg), False)):
            cmds = measure(step, fn, first)
            if first:
                names = [os.path.basename(c) for c in cmds]
                counts[step].update({"commands": len(cmds), "by_name": dict((n, names.count(n)) for n in names),
                                     "lvm_commands": len([n for n in names if n not in ("rbd",)]),
                                     "librados_connects": names.count("rbd")})
            expect(mapped(image) == want_mapped, "%s: mapped=%s" % (step, not want_mapped))
            if want_mapped:
                expect(vg_exists(vg), "VG %s after %s" % (vg, step))
            log("round %d by hand %s %.2fs" % (i + 1, step[5:], t[step][-1]))

    try:
        # the sm tree is laid out, installed and byte-compiled once, as on a host; each round
        # makes a fresh SR on a fresh image
        tree = make_tree(os.path.join(work, "tree"))
        for i in range(args.repeat):
            # rotate which goes first, so drift hits every method alike
            order = [driver_round, hand_round] + ([smlvm_round] if args.sm_lvm else [])
            k = i % len(order)
            for fn in order[k:] + order[:k]:
                fn(i, tree)
            t["python_startup"].append(timed(lambda: run(["python3", "-c", "pass"]))[0])
        results, ratios, goals = [], {}, []
        for op in OPS:
            dk, hk = "driver_" + op, "hand_" + op
            results.append(dict({"op": op, "method": "driver", "driver_smlog_median_s": smlog_summary(sm[dk]),
                                 "counts": counts[dk]}, **summary(t[dk])))
            results.append(dict({"op": op, "method": "by_hand", "counts": counts[hk]}, **summary(t[hk])))
            # rounds pair up: driver round i and by-hand round i ran side by side
            ndet = len(t[dk]) // max(1, len(t[hk]))
            drv_runs = [statistics.median(t[dk][j * ndet:(j + 1) * ndet]) for j in range(len(t[hk]))]
            pr = paired_ratio(drv_runs, t[hk])
            ratios[op + "_driver_over_by_hand"] = pr
            goals.append(goal(op + "_driver_over_by_hand", pr["median"], "<=", 1.1,
                              "%s through real sm %s vs the same by hand, paired rounds" % (op, SM_TREE),
                              spread=pr))
        # issue 14: no librados connection on attach unless something truly needs one
        goals.append(goal("sr_attach_librados_connects", counts["driver_sr_attach"]["librados_connects"], "<=", 0,
                          "librados connections the driver's sr_attach opens (its SMlog; first round)"))
        if args.sm_lvm:
            for op in OPS + ("sr_attach_first",):
                results.append(dict({"op": op, "method": "sm_lvm_sr_by_hand_map",
                                     "note": "sm's plain LVMSR (type lvm) on the device mapped with the rbd CLI",
                                     "counts": counts.get("smlvm_" + op)}, **summary(t["smlvm_" + op])))
                ratios[op + "_driver_over_sm_lvm_sr"] = paired_ratio(
                    [statistics.median(t["driver_" + op][j * (len(t["driver_" + op]) // len(t["smlvm_" + op])):
                                                         (j + 1) * (len(t["driver_" + op]) // len(t["smlvm_" + op]))])
                     for j in range(len(t["smlvm_" + op]))], t["smlvm_" + op])
        results.append(dict({"op": "sr_attach_first", "method": "driver",
                             "note": "first attach after create: also creates the MGT LV",
                             "driver_smlog_median_s": smlog_summary(sm["driver_sr_attach_first"]),
                             "counts": counts["driver_sr_attach_first"]}, **summary(t["driver_sr_attach_first"])))
        results.append(dict({"op": "python_startup", "method": "python3 -c pass"}, **summary(t["python_startup"])))
        ratios["sr_attach_first_driver_over_by_hand"] = paired_ratio(t["driver_sr_attach_first"], t["hand_sr_attach"])
        doc = {
            "bench": "controlplane_vm",
            "machine": machine(cluster.state),
            "params": {"repeat": args.repeat, "image_size_mib": args.size_mib,
                       "sm_tree": drivers[0].sm_tree if drivers else SM_TREE, "byte_compiled": True,
                       "lvm_system_dir": MASTER_LVM,
                       "counts": "first round; ceph = server-side deltas (OSD client ops, monitor sessions "
                                 "opened, monitor messages incl. daemons' own), commands = processes started",
                       "by_hand": {"sr_create": "rbd create + rbd device map + pvcreate + vgcreate + "
                                                "rbd device unmap",
                                   "sr_attach": "rbd device map + vgchange -ay",
                                   "sr_detach": "vgchange -an + rbd device unmap"}},
            "results": results,
            "ratios": ratios,
            "goals": goals,
        }
        doc["machine"]["loadavg_before"] = load_before
        doc["machine"]["loadavg_after"] = loadavg()
        return doc
    finally:
        keep = os.environ.get("RBDSR_VM_RESULTS")
        if keep and os.path.isdir(keep) and drivers:  # the driver's SMlog, for reading the timings
            shutil.copy(drivers[-1].tree.smlog, os.path.join(keep, "controlplane_vm-SMlog"))
        for vg in hand_vgs:
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
    ap.add_argument("--images", default="1000,10000", help="host: pool sizes probed, comma-separated")
    ap.add_argument("--repeat", type=int, default=None, help="runs per method (host 7 at the first size, vm 5)")
    ap.add_argument("--repeat-large", type=int, default=3, help="host: runs per method at the larger sizes")
    ap.add_argument("--size-mib", type=int, default=256, help="vm: SR image size")
    ap.add_argument("--no-sm-lvm", dest="sm_lvm", action="store_false",
                    help="vm: skip the column with sm's plain LVM SR on the mapped device")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    if args.repeat is None:
        args.repeat = 7 if args.part == "host" else 5
    doc = host_part(args) if args.part == "host" else vm_part(args)
    write_doc(doc, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
