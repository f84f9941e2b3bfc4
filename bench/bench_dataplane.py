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

The O_DIRECT tests interleave single operations (one per target in turn, the
order rotated, same offsets in each target's region), so a burst of load from
elsewhere on a shared machine hits every target alike; each target's figure is
taken at its median latency, and the lv/krbd ratio's spread is stated over
--blocks blocks of consecutive operations (quartiles and range).

    tools/vmlab/run-in-vm -- python3 bench/bench_dataplane.py --out /results/dataplane.json

The PV is made as sm's createVG makes it (pvcreate --metadatasize 10M) on the image mapped as
the driver maps it (--alignment object: pe_start on an object boundary, as on dom0's 4.19
kernel; --alignment kernel: this kernel's own io hints); the raw krbd region sits alike against
object boundaries ("tuning"."layout" in the JSON).

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


def _rbd_stat(dev):
    """(read requests, write requests) the rbd device has completed (/sys/block/rbdN/stat)."""
    if not dev:
        return (0, 0)
    with open("/sys/block/%s/stat" % dev) as f:
        v = f.read().split()
    return (int(v[0]), int(v[4]))


def interleaved(targets, op, bs, n, region, sequential, seed, rbd_dev=None):
    """n operations per target, interleaved op by op (target order rotated each
    time) at the same offsets in each target's region: a burst of load from
    elsewhere hits every target alike. Returns ({target: [seconds per op]},
    {target: requests that reached /dev/rbdN per op})."""
    buf = _buf(bs)
    rng = random.Random(seed)
    slots = region // bs
    lat = dict((name, []) for name, _t in targets)
    reqs = dict((name, 0) for name, _t in targets)
    col = 0 if op == "read" else 1
    for i in range(n):
        off = (i % slots) * bs if sequential else rng.randrange(slots) * bs
        k = i % len(targets)
        for name, target in targets[k:] + targets[:k]:
            s0 = _rbd_stat(rbd_dev)
            t0 = time.perf_counter()
            getattr(target, op)(buf, off)
            lat[name].append(time.perf_counter() - t0)
            reqs[name] += _rbd_stat(rbd_dev)[col] - s0[col]
    if op == "write":
        for _name, target in targets:
            target.flush()
    return lat, dict((name, round(r / float(n), 2)) for name, r in reqs.items())


def _lat_summary(lat, bs):
    med = statistics.median(lat)
    return {"ops": len(lat), "bytes": len(lat) * bs, "latency_median_ms": round(med * 1e3, 3),
            "latency_p25_ms": round(_q(lat, 0.25) * 1e3, 3), "latency_p75_ms": round(_q(lat, 0.75) * 1e3, 3),
            "MBps": round(bs / med / 1e6, 3), "iops": round(1 / med, 1),
            "MBps_mean": round(len(lat) * bs / sum(lat) / 1e6, 3)}


def _ratio_blocks(num, den, blocks):
    """Throughput ratio num/den from the paired operations (op i of each ran one
    right after the other: den latency / num latency), its median over all pairs
    and the medians of --blocks blocks of consecutive pairs: the blocks' spread is
    the ratio's spread."""
    pairs = [b / a for a, b in zip(num, den) if a > 0]
    size = max(1, len(pairs) // blocks)
    per = [statistics.median(pairs[j:j + size]) for j in range(0, len(pairs) - size + 1, size)]
    return {"median": round(statistics.median(pairs), 3),
            "of_median_latencies": round(statistics.median(den) / statistics.median(num), 3),
            "blocks_p25": round(_q(per, 0.25), 3), "blocks_p75": round(_q(per, 0.75), 3),
            "blocks_min": round(min(per), 3), "blocks_max": round(max(per), 3), "blocks": len(per),
            "ops_per_block": size}


def run_suite(targets, args, buffered=None, rbd_dev=None):
    region = args.region_mib * MIB
    # Unmeasured warm-up: write every target's whole region once, so reads
    # read real objects (RBD answers holes without asking an OSD) and no
    # target pays for first-touch object creation inside a measurement.
    for _name, target in targets:
        seq(target, "write", 4 * MIB, region, region)
    tests = [("seq_write_4M", "write", 4 * MIB, args.seq_ops, True),
             ("seq_read_4M", "read", 4 * MIB, args.seq_ops, True),
             ("rand_write_4K", "write", 4 * KIB, args.rand_ops, False),
             ("rand_read_4K", "read", 4 * KIB, args.rand_ops, False),
             # no goal: what blkback/tapdisk issue is at most 1 MiB per request
             ("seq_read_1M", "read", MIB, args.seq_ops * 4, True)]
    results, lats = {}, {}
    for i, (name, op, bs, n, sequential) in enumerate(tests):
        lat, reqs = interleaved(targets, op, bs, n, region, sequential, seed=i, rbd_dev=rbd_dev)
        lats[name] = lat
        results[name] = dict((t, _lat_summary(v, bs)) for t, v in lat.items())
        for t in ("lv", "krbd"):  # librbd does not go through the kernel device
            results[name][t]["rbd_requests_per_op"] = reqs[t]
        for tname, r in sorted(results[name].items()):
            print("  %-20s %-7s %9.3f MB/s %8.1f IOPS (median latency %.2f ms, p25-p75 %.2f-%.2f)"
                  % (name, tname, r["MBps"], r["iops"], r["latency_median_ms"], r["latency_p25_ms"],
                     r["latency_p75_ms"]), file=sys.stderr)
    rat = dict((name, {"lv_over_krbd": _ratio_blocks(lat["lv"], lat["krbd"], args.blocks),
                       "krbd_over_librbd": _ratio_blocks(lat["krbd"], lat["librbd"], args.blocks),
                       "lv_over_librbd": _ratio_blocks(lat["lv"], lat["librbd"], args.blocks)})
               for name, lat in lats.items())
    if buffered:
        # read-ahead applies here only: page cache dropped before each pass, targets alternate per pass
        parts = dict((t, []) for t, _x in buffered)
        for rnd in range(args.buffered_rounds):
            k = rnd % len(buffered)
            for tname, target in buffered[k:] + buffered[:k]:
                parts[tname].append(seq_buffered(target, 4 * MIB, args.buffered_mib * MIB, region))
        results["seq_read_4M_buffered"] = dict((t, _merge(p)) for t, p in parts.items())
        rs = [a["MBps"] / b["MBps"] for a, b in zip(parts["lv"], parts["krbd"]) if b["MBps"]]
        rat["seq_read_4M_buffered"] = {"lv_over_krbd": {
            "median": round(statistics.median(rs), 3), "blocks_p25": round(_q(rs, 0.25), 3),
            "blocks_p75": round(_q(rs, 0.75), 3), "blocks_min": round(min(rs), 3), "blocks_max": round(max(rs), 3),
            "blocks": len(rs), "ops_per_block": args.buffered_mib // 4}}
        for tname, r in sorted(results["seq_read_4M_buffered"].items()):
            print("  %-20s %-7s %9.3f MB/s (spread %.2f)" % ("seq_read_4M_buffered", tname, r["MBps"], r["spread"]),
                  file=sys.stderr)
    return results, rat


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
        g = goal("dataplane_%s_lv_over_krbd" % name, r["median"], ">=", target,
                 "LV on krbd / raw krbd, %s, O_DIRECT QD1, ops interleaved; median of the paired ops' "
                 "ratios, spread over blocks of consecutive pairs" % name,
                 spread=dict((k, r[k]) for k in ("blocks_p25", "blocks_p75", "blocks_min", "blocks_max", "blocks")))
        # a gap only counts when the blocks' interquartile range does not straddle the goal
        g["spread_smaller_than_gap"] = not (r["blocks_p25"] <= target <= r["blocks_p75"])
        out.append(g)
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
    ap.add_argument("--seq-ops", type=int, default=48, help="4 MiB operations per sequential test and target")
    ap.add_argument("--blocks", type=int, default=8, help="blocks of consecutive ops the ratio's spread is taken over")
    ap.add_argument("--buffered-mib", type=int, default=16, help="MiB per pass of the page-cache read test")
    ap.add_argument("--buffered-rounds", type=int, default=6, help="passes per target of the page-cache read test")
    ap.add_argument("--region-mib", type=int, default=64, help="span of the I/O inside the LV/image")
    ap.add_argument("--rand-ops", type=int, default=600, help="4 KiB operations per random test and target")
    ap.add_argument("--no-buffered", action="store_true", help="skip the page-cache read test")
    ap.add_argument("--librbd-cache", action="store_true", help="leave librbd's writeback cache on")
    ap.add_argument("--alignment", choices=("object", "kernel"), default="object",
                    help="object: map as the driver does (pe_start on an object boundary, as on dom0); "
                         "kernel: this kernel's default io hints (no goals then)")
    args = ap.parse_args()

    import rados
    import rbd

    from lvm_helpers import pv
    from rbdsr import krbd
    from rbdsr.credentials import Credentials
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
        with rbd.Image(ioctx, IMAGE, read_only=True) as im:
            obj_size = im.stat()["obj_size"]
        # "object": the driver's own map options (rbdsr.krbd.alignment_options: pe_start on an
        # object boundary, as dom0's 4.19 kernel has it); "kernel": this kernel's io hints
        map_opts = krbd.alignment_options() if args.alignment == "object" else None
        dev = krbd.map_image(iid, [mon_addr], Credentials("admin", key, "bench"), timeout=120,
                             extra_options=map_opts)
        # the PV as sm's createVG makes it (pvcreate --metadatasize 10M; LVM aligns pe_start to
        # the device's optimal_io_size, data_alignment_detection = 1 in dom0's lvm.conf too)
        _lvm(["pvcreate", "-ff", "-y", "--metadatasize", "10M", dev.stable_path])
        _lvm(["vgcreate", "-y", VG, dev.stable_path])
        _lvm(["lvcreate", "-y", "-n", LV, "-L", "%dm" % args.region_mib, VG])
        # raw krbd I/O goes to the half of the image after the LV's extents: region_mib is a
        # multiple of the object size, so both regions sit alike against object boundaries
        pe_start = int(pv.pv_fields(dev.stable_path, ["pe_start"])["pe_start"])
        raw_base = pe_start + args.region_mib * MIB
        if (args.region_mib * MIB) % obj_size:
            raise SystemExit("--region-mib must be a multiple of the object size (%d bytes)" % obj_size)
        layout = {"object_size": obj_size, "pe_start": pe_start, "lv_offset_in_object": pe_start % obj_size,
                  "raw_base": raw_base, "raw_offset_in_object": raw_base % obj_size,
                  "alignment": args.alignment, "map_options": map_opts or "defaults",
                  "pvcreate": "pvcreate -ff -y --metadatasize 10M (sm's createVG)"}
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
                  "krbd_map_options": map_opts or "defaults",
                  "krbd_queue_depth": "nr_requests of the rbd device (krbd default 128); no effect at queue "
                                      "depth 1 (tapdisk's O_DIRECT access here), so not changed",
                  "layout": layout}
        print("tuning: %s" % json.dumps(tuning), file=sys.stderr)
        targets = [("lv", BlockTarget(lv_path)), ("krbd", Shifted(raw, raw_base)),
                   ("librbd", LibrbdTarget(rbd.Image(ioctx, IMAGE)))]
        buffered = None if args.no_buffered else [("lv", Buffered(lv_path)),
                                                   ("krbd", Buffered(dev.dev_path, raw_base))]
        results, rat = run_suite(targets, args, buffered, os.path.basename(os.path.realpath(dev.dev_path)))
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
    doc = {
        "bench": "dataplane",
        "commit": os.environ.get("RBDSR_BENCH_COMMIT"),
        "tuning": tuning,
        "machine": machine_info(state),
        "goals": goals(rat) if args.alignment == "object" else [],
        "kernel": os.uname().release,
        "objectstore": args.objectstore if not args.conf else "external",
        "queue_depth": 1,
        "librbd_cache": args.librbd_cache,
        "params": {"seq_ops": args.seq_ops, "region_mib": args.region_mib, "rand_ops": args.rand_ops,
                   "blocks": args.blocks, "buffered_mib": args.buffered_mib,
                   "buffered_rounds": args.buffered_rounds,
                   "method": "O_DIRECT QD1, one op per target in turn (order rotated), median latency per "
                             "target; MBps/iops at the median latency",
                   "rbd_requests_per_op": "block-layer requests on /dev/rbdN counted from its stat file around "
                                          "each op; the kernel may account a completion after the syscall "
                                          "returns, so the split between lv and krbd is approximate (their sum "
                                          "per pair is not); rbd splits requests into object requests below "
                                          "this count"},
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
