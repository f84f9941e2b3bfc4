#!/usr/bin/python3
"""VDI work on RBDSR against the SR users have today (runs inside the VM lab).

The same VDI calls -- vdi_create, vdi_snapshot, vdi_clone, vdi_delete, and
sr_scan of an SR holding N VDIs (default 200) -- through REAL sm (SM_TREE,
today's XCP-ng 8.3), as XAPI makes them, on two SRs in one VM run:

  rbdsr   an lvmoiscsi SR on port 6789, diverted to RBDSR (image on the
          throwaway memstore cluster, mapped with krbd)
  lvm     sm's own plain LVM SR (type lvm, /opt/xensource/sm/LVMSR) on a loop
          device over a sparse file in the guest's tmpfs

Rounds alternate which SR goes first; each round creates a VDI, snapshots and
clones it, then deletes the three. The N VDIs for the scan are put in place
before the rounds (their LVs made with lvcreate + vhd-util create, as sm lays
a VHD VDI out; the first sr_scan introduces them, reported apart), then
sr_scan is timed once per round. Ratios: rbdsr / lvm per operation, per round
(goal: at most 1.1).

It needs the real-sm VM harness (tests/vm/realdom0.py: the guest laid out as
dom0, sm's GC unit behind a systemctl stand-in, vhd-util in the image): with
no harness it prints a JSON saying so and exits 2.

    tools/vmlab/run-in-vm -- python3 bench/bench_vdi.py [--vdis 200] [--rounds 3] --out /results/vdi.json
"""
import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (MIB, ROOT, SM_TREE, Cluster, goal, loadavg, log, machine, paired_ratio,  # noqa: E402
                      summary, timed, write_doc)

sys.path.insert(0, os.path.join(ROOT, "tests", "vm"))

IMAGE = "bench-vdi-sr"
VDI_OPS = ("vdi_create", "vdi_snapshot", "vdi_clone", "vdi_delete", "sr_scan")
SM_DIR = "/opt/xensource/sm"


def sh(argv, timeout=600):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s: rc %d: %s" % (" ".join(argv), p.returncode, p.stderr.strip()[-1000:]))
    return p.stdout


# The guest's udev (systemd 252) watches loop devices but not rbd ones (60-block.rules): every
# LVM command that writes the loop device's metadata makes udev run blkid on it, and Debian's
# 69-lvm.rules then a pvscan: work only the LVM SR's side had. Such late events are the likely
# (unproven) cause of the LVM SR's one failure seen (`lvchange -ay` succeeded, /dev/VG/LV was
# gone: "LV not activated"; LVM runs with dom0's udev_rules = 0 and makes the nodes itself).
# Neither SR's device is watched here: like for like.
NOWATCH_RULE = "/etc/udev/rules.d/61-rbdsr-bench-loop-nowatch.rules"


def loop_nowatch():
    with open(NOWATCH_RULE, "w") as f:
        f.write('ACTION!="remove", SUBSYSTEM=="block", KERNEL=="loop*", OPTIONS+="nowatch"\n')
    sh(["udevadm", "control", "--reload"], timeout=60)
    return NOWATCH_RULE


class SR(object):
    """One SR of the comparison: its Pool (XAPI's records and calls) and its host identity."""

    def __init__(self, name, dom0, pool):
        self.name = name
        self.dom0 = dom0
        self.pool = pool
        self.vg = "VG_XenStorage-" + pool.sr_uuid

    def as_this_host(self):
        # both pools live on this one guest: /etc/xensource-inventory names the pool's host
        self.dom0.write_inventory(self.pool.host_uuids[0], self.pool.dom0_uuids[0])
        # and sm's GC, started through systemctl with systemd's DefaultEnvironment, must read
        # this pool's XAPI records: with the other pool's, the LVM SR's GC failed at once
        # (UUID_INVALID) while RBDSR's did its work (same line as Dom0.install writes)
        import realdom0
        self.dom0._put(realdom0.SYSTEM_CONF, "[Manager]\nDefaultEnvironment=%s\n" % " ".join(
            '"%s=%s"' % kv for kv in sorted(self.dom0.service_env().items())))

    def call(self, command, **kw):
        return self.pool.call(command, **kw)

    def quiesce(self, timeout=900):
        """Wait (untimed) until sm's GC for this SR is not running: a GC that one SR's round
        kicked must not run during the other SR's timed calls (it did: RBDSR's ran through
        the LVM SR's vdi_create and vdi_snapshot)."""
        deadline = time.monotonic() + timeout
        while self.pool.gc_state().get("ActiveState") == "activating":
            if time.monotonic() > deadline:
                raise RuntimeError("%s: sm's GC still running after %d s" % (self.name, timeout))
            time.sleep(0.5)

    def populate(self, n, size):
        """n VHD VDIs laid out as sm lays them out (LV VHD-<uuid>, VHD header inside),
        without sm: the scan then finds and introduces them."""
        lv_size = size + 8 * MIB  # the VHD's metadata (header, BAT) beside the data, as sm sizes it
        for _ in range(n):
            vdi = str(uuid.uuid4())
            lv = "VHD-" + vdi
            sh(["lvcreate", "-y", "-n", lv, "-L", "%db" % lv_size, self.vg])
            sh(["vhd-util", "create", "-n", "/dev/%s/%s" % (self.vg, lv), "-s", str(size // MIB)])
            sh(["lvchange", "-an", "%s/%s" % (self.vg, lv)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vdis", type=int, default=200, help="VDIs in each SR for sr_scan")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vdi-mib", type=int, default=8, help="virtual size of each VDI")
    ap.add_argument("--sr-mib", type=int, default=4096, help="size of each SR (sparse)")
    ap.add_argument("--out")
    args = ap.parse_args()
    if os.environ.get("RBDSR_IN_VM") != "1":
        raise SystemExit("bench_vdi.py needs the VM lab: tools/vmlab/run-in-vm -- python3 bench/bench_vdi.py")
    try:
        import realdom0
    except ImportError as e:
        write_doc({"bench": "vdi", "not_run": "the real-sm VM harness is not in this tree (tests/vm/realdom0.py, "
                                              "branch vmsm: dom0 layout, systemctl stand-in for sm's GC, vhd-util "
                                              "in the VM image): %s" % e, "goals": []}, args.out)
        return 2
    if not os.access("/usr/bin/vhd-util", os.X_OK):
        write_doc({"bench": "vdi", "not_run": "no /usr/bin/vhd-util in the VM image", "goals": []}, args.out)
        return 2

    load_before = loadavg()
    cluster = Cluster()
    work = tempfile.mkdtemp(prefix="rbdsr-bench-vdi-")
    results_dir = os.environ.get("RBDSR_VM_RESULTS") or work
    dom0 = realdom0.Dom0(SM_TREE, os.path.join(work, "dom0"), results_dir)
    loop = nowatch = None
    srs = []
    size = args.vdi_mib * MIB
    sr_size = args.sr_mib * MIB
    t = {}
    try:
        dom0.install()
        sh([sys.executable, os.path.join(ROOT, "install_rbdsr.py"), "enable", "--root", "/"])
        key = cluster.key().reveal()

        # RBDSR: an lvmoiscsi SR on port 6789
        rp = realdom0.Pool(dom0, {}, secrets=[key], hosts=1)
        rp.set_dconf({"target": cluster.mon_addr, "port": "6789", "targetIQN": cluster.pool, "SCSIid": IMAGE,
                      "chapuser": "admin", "chappassword_secret": rp.refs["secrets"][key], "timeout": "120"})
        rbdsr = SR("rbdsr", dom0, rp)
        # sm's plain LVM SR on a loop device: its own XAPI database, the LVMSR driver script
        img = os.path.join("/tmp", "bench-lvmsr.img")
        with open(img, "wb") as f:
            f.truncate(sr_size)
        nowatch = loop_nowatch()
        loop = sh(["losetup", "-f", "--show", img]).strip()
        ldom0 = copy.copy(dom0)
        ldom0.script = os.path.join(SM_DIR, "LVMSR")
        ldom0.db = os.path.join(work, "xapi-lvm.json")
        lp = realdom0.Pool(ldom0, {"device": loop}, secrets=[], hosts=1)
        db = lp.db()
        db["SR"][lp.refs["sr"]]["type"] = "lvm"
        realdom0.h.XenAPI.save_db(db, ldom0.db)
        lvm = SR("lvm", ldom0, lp)
        srs = [rbdsr, lvm]

        for sr in srs:
            sr.as_this_host()
            sr.call("sr_create", args=[str(sr_size)])
            sr.call("sr_attach")
            sr.pool.plug(0, True)
            log("%s SR %s attached" % (sr.name, sr.pool.sr_uuid))
            t_pop, _ = timed(lambda sr=sr: sr.populate(args.vdis, size))
            log("%s: %d VDIs laid out in %.0fs" % (sr.name, args.vdis, t_pop))
            sr.as_this_host()
            dt, _ = timed(lambda sr=sr: sr.call("sr_scan"))
            t.setdefault("sr_scan_introduce", {})[sr.name] = [dt]
            n = sum(1 for v in sr.pool.db()["VDI"].values() if v.get("SR") == sr.pool.refs["sr"])
            if n < args.vdis:
                raise RuntimeError("%s: sr_scan introduced %d VDIs, %d laid out" % (sr.name, n, args.vdis))

        for op in VDI_OPS:
            t[op] = dict((sr.name, []) for sr in srs)
        for rnd in range(args.rounds):
            for sr in (srs if rnd % 2 == 0 else srs[::-1]):
                for other in srs:
                    other.quiesce()
                sr.as_this_host()
                p = sr.pool
                dt, vdi = timed(lambda p=p: p.vdi_create(size))
                t["vdi_create"][sr.name].append(dt)
                dt, snap = timed(lambda p=p, v=vdi: p.vdi_snapshot(v))
                t["vdi_snapshot"][sr.name].append(dt)
                dt, clone = timed(lambda p=p, v=vdi: p.vdi_snapshot(v, clone=True))
                t["vdi_clone"][sr.name].append(dt)
                dels = []
                for v in (clone, snap, vdi):
                    dels.append(timed(lambda p=p, v=v: p.call("vdi_delete", vdi=v))[0])
                t["vdi_delete"][sr.name].append(statistics.median(dels))
                dt, _ = timed(lambda p=p: p.call("sr_scan"))
                t["sr_scan"][sr.name].append(dt)
                log("round %d %s: %s" % (rnd + 1, sr.name, ", ".join("%s %.1fs" % (op, t[op][sr.name][-1])
                                                                    for op in VDI_OPS)))
        results, ratios, goals = [], {}, []
        for op in VDI_OPS + ("sr_scan_introduce",):
            for name, runs in t[op].items():
                results.append(dict({"op": op, "sr": name, "vdis_in_sr": args.vdis}, **summary(runs)))
            pr = paired_ratio(t[op]["rbdsr"], t[op]["lvm"])
            ratios[op + "_rbdsr_over_lvm"] = pr
            if op in VDI_OPS:
                goals.append(goal("%s_rbdsr_over_lvm_sr" % op, pr["median"], "<=", 1.1,
                                  "%s on RBDSR / on sm's plain LVM SR over a loop device (%d VDIs in each)"
                                  % (op, args.vdis), spread=pr))
        doc = {"bench": "vdi", "machine": machine(cluster.state),
               "params": {"sm_tree": SM_TREE, "vdis": args.vdis, "rounds": args.rounds, "vdi_mib": args.vdi_mib,
                          "sr_mib": args.sr_mib, "lvm_sr_device": "loop device over a sparse file in tmpfs",
                          "lvm_sr_device_udev": "no inotify watch on the loop device (%s), as on the rbd "
                                                "device: no blkid/pvscan after each metadata write" % NOWATCH_RULE,
                          "delete": "median of the three deletes (clone, snapshot, base) of a round"},
               "results": results, "ratios": ratios, "goals": goals}
        doc["machine"]["loadavg_before"] = load_before
        doc["machine"]["loadavg_after"] = loadavg()
        write_doc(doc, args.out)
        return 0
    finally:
        for sr in srs:
            try:
                sr.as_this_host()
                sr.call("sr_detach", expect_ok=False)
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                log("detach %s: %s" % (sr.name, e))
        subprocess.run([sys.executable, os.path.join(ROOT, "install_rbdsr.py"), "disable", "--root", "/"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        dom0.remove()
        if loop:
            subprocess.run(["losetup", "-d", loop], timeout=60)
        if nowatch:
            os.unlink(nowatch)
            subprocess.run(["udevadm", "control", "--reload"], timeout=60)
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
