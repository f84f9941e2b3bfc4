#!/usr/bin/python3
"""Listing a pool of N images with their sizes, four ways, in one run:

  librbd_backend   rbdsr's LibrbdBackend.list_images (one directory read, then
                   every size via the rbd class's get_size, all in flight together)
  librbd_naive     RBD().list2() then open each image and ask its size (N round trips)
  rbd_cli          `rbd ls -l --format json` run locally
  ssh_backend      rbdsr's SSHBackend.list_images (`rbd ls -l --format json` on the
                   "monitor" through a real sshd on 127.0.0.1, via sudo)

It starts its own dev cluster (tools/ceph-dev-cluster, memstore) and sshd
(tests/sshd.py), checks that all four return the same names and sizes, and
prints JSON: median/min seconds per method and ratios to librbd_backend.

    .venv/bin/python bench/bench_list_images.py [--images 1000] [--repeat 5] [--out FILE]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import rados  # noqa: E402
import rbd  # noqa: E402

from rbdsr.backends import open_backend  # noqa: E402
from rbdsr.config import TargetConfig  # noqa: E402
from tests.sshd import SSHD  # noqa: E402

TOOL = os.path.join(ROOT, "tools", "ceph-dev-cluster")
MiB = 1 << 20


def tool(command, directory, *extra):
    res = subprocess.run([TOOL, command, "--dir", directory, "--json"] + list(extra), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    if res.returncode != 0:
        raise SystemExit("ceph-dev-cluster %s failed: %s" % (command, res.stderr.strip()[-2000:]))
    return json.loads(res.stdout)


def read_key(path, entity):
    section = None
    for line in open(path):
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif section == entity and line.startswith("key"):
            return line.split("=", 1)[1].strip()
    raise SystemExit("no key for %s in %s" % (entity, path))


def timed(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="rbdsr-bench-list-")
    cluster_dir = os.path.join(workdir, "cluster")
    info = tool("start", cluster_dir)
    sshd = None
    try:
        conf, pool = info["conf"], info["pool"]
        admin_key = read_key(info["admin_keyring"], "client.admin")
        client = rados.Rados(conffile=conf, rados_id="admin")
        client.connect(timeout=30)
        t0 = time.perf_counter()
        with client.open_ioctx(pool) as io:
            for i in range(args.images):
                rbd.RBD().create(io, "bench-%05d" % i, (4 + i % 61) * MiB, old_format=False, features=1)
        create_s = time.perf_counter() - t0
        client.shutdown()

        sshd = SSHD(conf).start()
        lib_cfg = TargetConfig.from_dconf({"target": info["mon_addr"], "targetIQN": pool, "chapuser": "admin",
                                           "chappassword": admin_key, "timeout": "60"})
        ssh_cfg = TargetConfig.from_dconf(dict(sshd.dconf(type("C", (), {"mon_addr": info["mon_addr"]}), pool),
                                               timeout="120"))
        lib = open_backend(lib_cfg)
        ssh = open_backend(ssh_cfg)

        def naive():
            out = []
            with lib._cluster.open_ioctx(pool) as io:
                for e in rbd.RBD().list2(io):
                    with rbd.Image(io, e["name"], read_only=True) as img:
                        out.append((e["name"], img.size()))
            return sorted(out)

        def cli():
            res = subprocess.run(["rbd", "--conf", conf, "ls", "-l", "--format", "json", "--pool", pool],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                 timeout=300, check=True)
            return sorted((e["image"], e["size"]) for e in json.loads(res.stdout) if "snapshot" not in e)

        methods = [
            ("librbd_backend", lambda: [(i.name, i.size) for i in lib.list_images(pool)]),
            ("librbd_naive", naive),
            ("rbd_cli", cli),
            ("ssh_backend", lambda: [(i.name, i.size) for i in ssh.list_images(pool)]),
        ]
        results, answers = {}, {}
        for name, fn in methods:
            answer, times = timed(fn, args.repeat)
            answers[name] = answer
            results[name] = {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
                             "runs_s": [round(t, 4) for t in times]}
        lib.close()
        ssh.close()
        reference = answers["librbd_backend"]
        same = all(a == reference for a in answers.values())
        if len(reference) != args.images:
            raise SystemExit("listed %d images, created %d" % (len(reference), args.images))
        base = results["librbd_backend"]["median_s"]
        doc = {
            "bench": "list_images",
            "images": args.images,
            "repeat": args.repeat,
            "all_answers_identical": same,
            "create_images_s": round(create_s, 2),
            "methods": results,
            "ratio_to_librbd_backend": dict((k, round(v["median_s"] / base, 2)) for k, v in results.items()),
            "host": {"python": platform.python_version(), "cpus": os.cpu_count(),
                     "objectstore": info.get("objectstore")},
        }
        text = json.dumps(doc, indent=1, sort_keys=True)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
        return 0 if same else 1
    finally:
        if sshd is not None:
            sshd.stop()
        tool("stop", cluster_dir)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
