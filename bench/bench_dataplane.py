#!/usr/bin/python3
"""Data-plane benchmark (runs inside the VM lab): the same I/O through

  lv      an LV of a VG on the kernel-mapped image (what VDIs use),
  krbd    the raw /dev/rbdN of that image,
  librbd  the image through the python rbd bindings (userspace client),

side by side in one run, and JSON with MB/s, IOPS and the ratios lv/krbd,
krbd/librbd, lv/librbd. Block devices use O_DIRECT (no page cache: what
tapdisk does with a VDI's LV), queue depth 1 everywhere. `seq_read_4M_buffered`
reads through the page cache (dropped before each pass), where the block
devices' read-ahead matters (dm device vs /dev/rbdN): the tuning the project
controls, recorded under "tuning" with the queue limits of both devices.

Every test runs --rounds times, targets interleaved with the order rotated;
ratios are per round (lv round i / krbd round i), reported with their median,
quartiles and range, so the spread of the ratio itself is stated.

    tools/vmlab/run-in-vm -- python3 bench/bench_dataplane.py --out /results/dataplane.json

With no --conf, a throwaway memstore cluster is started with tools/cephlab.
"""
import argparse
import json
import mmap
import os
import random
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.join(REPO, "bench"))

MIB = 1 << 20
KIB = 1 << 10
IMAGE = "bench-dataplane"
VG = "bench_dp_vg"
LV = "bench_lv"


class BlockTarget(object):
    """O_DIRECT I/O on a block device at a base offset."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_DIRECT)

    def write(self, buf, offset):
        os.lseek(self.fd, offset, os.SEEK_SET)
        if os.write(self.fd, buf) != len(buf):
            raise IOError("short write on %s" % self.path)

    def read(self, buf, offset):
        os.lseek(self.fd, offset, os.SEEK_SET)
        if os.readv(self.fd, [buf]) != len(buf):
            raise IOError("short read on %s" % self.path)

    def flush(self):
        os.fsync(self.fd)

    def close(self):
        os.close(self.fd)


class LibrbdTarget(object):
    def __init__(self, image):
        self.image = image

    def write(self, buf, offset):
        self.image.write(bytes(buf), offset)

    def read(self, buf, offset):
        data = self.image.read(offset, len(buf))
        if len(data) != len(buf):
            raise IOError("short librbd read")

    def flush(self):
        self.image.flush()

    def close(self):
        self.image.close()


def _buf(size):
    b = mmap.mmap(-1, size)
    b.write(os.urandom(size))
    return b


def seq(target, op, bs, total, region):
    buf = _buf(bs)
    n = total // bs
    t0 = time.monotonic()
    for i in range(n):
        getattr(target, op)(buf, (i * bs) % region)
    if op == "write":
        target.flush()
    dt = time.monotonic() - t0
    return {"ops": n, "bytes": n * bs, "seconds": round(dt, 3),
            "MBps": round(n * bs / dt / 1e6, 2), "iops": round(n / dt, 1)}


def rand(target, op, bs, region, max_ops, max_seconds, seed):
    buf = _buf(bs)
    rng = random.Random(seed)
    slots = region // bs
    t0 = time.monotonic()
    n = 0
    while n < max_ops and time.monotonic() - t0 < max_seconds:
        getattr(target, op)(buf, rng.randrange(slots) * bs)
        n += 1
    if op == "write":
        target.flush()
    dt = time.monotonic() - t0
    return {"ops": n, "bytes": n * bs, "seconds": round(dt, 3),
            "MBps": round(n * bs / dt / 1e6, 2), "iops": round(n / dt, 1)}


def _merge(parts):
    ops = sum(p["ops"] for p in parts)
    nbytes = sum(p["bytes"] for p in parts)
    secs = sum(p["seconds"] for p in parts)
    per = [p["MBps"] for p in parts]
    return {"ops": ops, "bytes": nbytes, "seconds": round(secs, 3), "rounds": len(parts),
            "MBps": round(nbytes / secs / 1e6, 2) if secs else None,
            "iops": round(ops / secs, 1) if secs else None,
            "MBps_per_round": per, "MBps_median": round(statistics.median(per), 2),
            "spread": round((_q(per, 0.75) - _q(per, 0.25)) / statistics.median(per), 3)}


def _q(xs, q):
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class Buffered(object):
    """Reads through the page cache (read-ahead applies); the cache is dropped first."""

    def __init__(self, path, base=0):
        self.path = path
        self.base = base
        self.fd = os.open(path, os.O_RDONLY)

    def drop(self):
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def read(self, buf, offset):
        if os.preadv(self.fd, [buf], self.base + offset) != len(buf):
            raise IOError("short read on %s" % self.path)

    def flush(self):
        pass

    def close(self):
        os.close(self.fd)


def seq_buffered(target, bs, total, region):
    target.drop()
    return seq(target, "read", bs, total, region)


def run_suite(targets, args, buffered=None):
    region = args.region_mib * MIB
    # Unmeasured warm-up: write every target's whole region once, so reads
    # read real objects (RBD answers holes without asking an OSD) and no
    # target pays for first-touch object creation inside a measurement.
    for _name, target in targets:
        seq(target, "write", 4 * MIB, region, region)
    tests = [
        ("seq_write_4M", lambda t: seq(t, "write", 4 * MIB, args.seq_mib * MIB, region)),
        ("seq_read_4M", lambda t: seq(t, "read", 4 * MIB, args.seq_mib * MIB, region)),
        ("rand_write_4K", lambda t: rand(t, "write", 4 * KIB, region, args.rand_ops, args.rand_seconds, 1)),
        ("rand_read_4K", lambda t: rand(t, "read", 4 * KIB, region, args.rand_ops, args.rand_seconds, 2)),
    ]
    suites = [(name, fn, targets) for name, fn in tests]
    if buffered:
        suites.append(("seq_read_4M_buffered", lambda t: seq_buffered(t, 4 * MIB, args.seq_mib * MIB, region),
                       buffered))
    results = {}
    for name, fn, tgts in suites:
        parts = dict((tname, []) for tname, _t in tgts)
        for rnd in range(args.rounds):
            # Interleaved, with the order rotated each round, so drift and
            # warm-up effects hit every target alike.
            k = rnd % len(tgts)
            for tname, target in tgts[k:] + tgts[:k]:
                parts[tname].append(fn(target))
        results[name] = dict((tname, _merge(p)) for tname, p in parts.items())
        for tname, r in sorted(results[name].items()):
            print("  %-20s %-7s %8.2f MB/s %8.1f IOPS (spread %.2f)" % (name, tname, r["MBps"], r["iops"], r["spread"]),
                  file=sys.stderr)
    return results


def _paired(r, a, b):
    if a not in r or b not in r:
        return None
    rs = [x / y for x, y in zip(r[a]["MBps_per_round"], r[b]["MBps_per_round"]) if y]
    return {"median": round(statistics.median(rs), 3), "p25": round(_q(rs, 0.25), 3), "p75": round(_q(rs, 0.75), 3),
            "min": round(min(rs), 3), "max": round(max(rs), 3), "n": len(rs),
            "of_totals": round(r[a]["MBps"] / r[b]["MBps"], 3) if r[b]["MBps"] else None}


def ratios(results):
    return dict((name, {"lv_over_krbd": _paired(r, "lv", "krbd"), "krbd_over_librbd": _paired(r, "krbd", "librbd"),
                        "lv_over_librbd": _paired(r, "lv", "librbd")})
                for name, r in results.items())


# issue 14: LV on krbd against raw krbd
GOALS = (("seq_write_4M", 0.95), ("seq_read_4M", 0.95), ("rand_write_4K", 0.9), ("rand_read_4K", 0.9))


def machine_info(state):
    from benchlib import machine
    return machine(state)


def goals(rat):
    from benchlib import goal
    out = []
    for name, target in GOALS:
        r = rat[name]["lv_over_krbd"]
        out.append(goal("dataplane_%s_lv_over_krbd" % name, r["median"], ">=", target,
                        "LV on krbd / raw krbd, %s, O_DIRECT QD1, per-round ratio" % name,
                        spread=dict((k, r[k]) for k in ("p25", "p75", "min", "max", "n"))))
    return out


def queue_facts(dev_path):
    """The block queue settings that shape this device's I/O (sysfs)."""
    name = os.path.basename(os.path.realpath(dev_path))
    q = "/sys/block/%s/queue" % name
    out = {"device": name}
    for attr in ("read_ahead_kb", "max_sectors_kb", "max_hw_sectors_kb", "nr_requests", "optimal_io_size",
                 "minimum_io_size", "scheduler", "max_segments"):
        try:
            with open(os.path.join(q, attr)) as f:
                out[attr] = f.read().strip()
        except OSError:
            pass
    return out


def set_read_ahead(dev_path, kb):
    name = os.path.basename(os.path.realpath(dev_path))
    with open("/sys/block/%s/queue/read_ahead_kb" % name, "w") as f:
        f.write(str(kb))


def _lvm(argv):
    from lvm_helpers.cmd import run
    return run(argv, timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    ap.add_argument("--conf", help="ceph.conf of an existing cluster (default: start one)")
    ap.add_argument("--keyring", help="admin keyring of that cluster")
    ap.add_argument("--pool", default="rbd")
    ap.add_argument("--objectstore", default="memstore", choices=("memstore", "bluestore"))
    ap.add_argument("--seq-mib", type=int, default=16, help="MiB per sequential test, target and round")
    ap.add_argument("--region-mib", type=int, default=64, help="span of the I/O inside the LV/image")
    ap.add_argument("--rand-ops", type=int, default=150, help="max ops per random test, target and round")
    ap.add_argument("--rand-seconds", type=float, default=3.0,
                    help="max seconds per random test, target and round")
    ap.add_argument("--rounds", type=int, default=9, help="rounds per test (target order rotates)")
    ap.add_argument("--no-buffered", action="store_true", help="skip the page-cache read test")
    ap.add_argument("--librbd-cache", action="store_true", help="leave librbd's writeback cache on")
    args = ap.parse_args()

    import rados
    import rbd

    from lvm_helpers import pv
    from rbdsr import krbd
    from rbdsr.secret import read_keyring

    t_start = time.monotonic()
    stop_cluster = None
    state = {}
    if args.conf:
        conf, keyring = args.conf, args.keyring
    else:
        from cephlab import cluster as cephlab
        d = os.path.join(tempfile.mkdtemp(prefix="bench-ceph-"), "c")
        state = cephlab.start(d, objectstore=args.objectstore, timeout=600, mgr_modules="none")
        conf, keyring = state["conf"], state["admin_keyring"]
        stop_cluster = lambda: cephlab.stop(d)  # noqa: E731
    # librbd's writeback cache would let its writes skip the round trips that
    # O_DIRECT makes the block targets pay: off, unless asked, to compare like with like.
    cl = rados.Rados(conffile=conf, conf={"keyring": keyring, "rbd_cache": "true" if args.librbd_cache else "false"},
                     rados_id="admin")
    cl.connect(timeout=60)
    ioctx = cl.open_ioctx(args.pool)
    key = read_keyring(keyring, "client.admin")
    mon_addr = [a for a in cl.conf_get("mon_host").replace("[", " ").replace("]", " ").replace(",", " ").split()
                if a.startswith("v1:")][0][3:]
    size = (args.region_mib * 2 + 64) * MIB
    rbd.RBD().create(ioctx, IMAGE, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
    iid = krbd.ImageId(cl.get_fsid(), args.pool, "", IMAGE)
    targets = []
    tuning = {}
    try:
        dev = krbd.map_image(iid, [mon_addr], "admin", key, timeout=120)
        _lvm(["pvcreate", "-y", dev.stable_path])
        _lvm(["vgcreate", "-y", VG, dev.stable_path])
        _lvm(["lvcreate", "-y", "-n", LV, "-L", "%dm" % args.region_mib, VG])
        # raw krbd I/O goes to the half of the image after the LV's extents
        pe_start = int(pv.pv_fields(dev.stable_path, ["pe_start"])["pe_start"])
        raw_base = pe_start + args.region_mib * MIB
        raw = BlockTarget(dev.dev_path)

        class Shifted(object):  # raw device region that does not overlap the LV
            def __init__(self, t, base):
                self.t, self.base = t, base

            def write(self, buf, off):
                self.t.write(buf, self.base + off)

            def read(self, buf, off):
                self.t.read(buf, self.base + off)

            def flush(self):
                self.t.flush()

            def close(self):
                self.t.close()

        lv_path = "/dev/%s/%s" % (VG, LV)
        tuning = {"rbd": queue_facts(dev.dev_path), "lv": queue_facts(lv_path),
                  "lv_read_ahead_lvm": _lvm(["lvs", "--noheadings", "-o", "lv_read_ahead,lv_kernel_read_ahead",
                                             "%s/%s" % (VG, LV)]).out.split(),
                  "krbd_map_options": "defaults (queue_depth = nr_requests of the rbd device)"}
        print("tuning: %s" % json.dumps(tuning), file=sys.stderr)
        targets = [("lv", BlockTarget(lv_path)), ("krbd", Shifted(raw, raw_base)),
                   ("librbd", LibrbdTarget(rbd.Image(ioctx, IMAGE)))]
        buffered = None if args.no_buffered else [("lv", Buffered(lv_path)),
                                                   ("krbd", Buffered(dev.dev_path, raw_base))]
        results = run_suite(targets, args, buffered)
        targets += buffered or []
    finally:
        for _n, t in targets:
            try:
                t.close()
            except Exception:  # noqa: BLE001 - cleanup
                pass
        from lvm_helpers.cmd import run as lvm_run
        lvm_run(["vgchange", "-an", VG], timeout=60, check=False)
        lvm_run(["vgremove", "-ff", "-y", VG], timeout=60, check=False)
        krbd.unmap(iid, force=True, timeout=60)
        rbd.RBD().remove(ioctx, IMAGE)
        ioctx.close()
        cl.shutdown()
        if stop_cluster:
            stop_cluster()
    rat = ratios(results)
    doc = {
        "bench": "dataplane",
        "commit": os.environ.get("RBDSR_BENCH_COMMIT"),
        "tuning": tuning,
        "machine": machine_info(state),
        "goals": goals(rat),
        "kernel": os.uname().release,
        "objectstore": args.objectstore if not args.conf else "external",
        "queue_depth": 1,
        "librbd_cache": args.librbd_cache,
        "params": {"seq_mib": args.seq_mib, "region_mib": args.region_mib, "rand_ops": args.rand_ops,
                   "rand_seconds": args.rand_seconds, "rounds": args.rounds},
        "results": results,
        "ratios": rat,
        "wall_seconds": round(time.monotonic() - t_start, 1),
    }
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
