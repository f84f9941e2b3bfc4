"""Command line of tools/ceph-dev-cluster."""
import argparse
import json
import os
import sys

from . import cluster, install

DEFAULT_DIR = os.environ.get("CEPH_DEV_CLUSTER_DIR", "/tmp/ceph-dev-cluster")
# the VM lab guest (RBDSR_IN_VM=1) cannot afford the mgr's python modules
DEFAULT_MGR_MODULES = os.environ.get("CEPH_DEV_CLUSTER_MGR_MODULES",
                                     "none" if os.environ.get("RBDSR_IN_VM") else "standard")


def _print(args, doc, lines):
    if args.json:
        json.dump(doc, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        for line in lines:
            print(line)


def _start(args):
    install.ensure(allow_install=not args.no_install)
    st = cluster.start(args.dir, objectstore=args.objectstore, mon_port=args.mon_port,
                       timeout=args.timeout, osd_size_gib=args.osd_size_gib, mgr_modules=args.mgr_modules)
    _print(args, st, [
        "cluster up in %.1f s (%s, mgr modules: %s)" % (st["startup_seconds"], st["objectstore"],
                                                         st["mgr_modules"]),
        "dir:           %s" % st["dir"],
        "conf:          %s" % st["conf"],
        "admin keyring: %s" % st["admin_keyring"],
        "mon addr (v1): %s" % st["mon_addr"],
        "mon host:      %s" % st["mon_host"],
        "fsid:          %s" % st["fsid"],
        "pool:          %s" % st["pool"],
        "try: ceph -c %s -k %s -s" % (st["conf"], st["admin_keyring"]),
    ])
    return 0


def _stop(args):
    res = cluster.stop(args.dir)
    _print(args, res, ["stopped pids %s; removed %s" % (res["stopped"], res["dir"])
                       if res["removed"] else "nothing at %s" % res["dir"]])
    return 0


def _status(args):
    st = cluster.status(args.dir)
    lines = ["%s: %s" % (st["dir"], "running" if st["running"] else "not running")]
    for name, pid in sorted(st.get("daemons", {}).items()):
        lines.append("  %s: %s" % (name, "pid %d" % pid if pid else "down"))
    if "health" in st:
        lines.append("  health: %s%s" % (st["health"], "" if st.get("ready", True)
                                         else " (waiting for %s)" % "; ".join(st["waiting_for"])))
    _print(args, st, lines)
    return 0 if st["running"] else 3


def _restart_osd(args):
    res = cluster.restart_osd(args.dir, timeout=args.timeout)
    _print(args, res, ["osd restarted in %.1f s" % res["restart_seconds"]])
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="ceph-dev-cluster",
                                description="Throwaway one-mon/one-mgr/one-OSD Ceph cluster on 127.0.0.1.")
    p.add_argument("command", choices=["start", "stop", "status", "restart-osd"])
    p.add_argument("--dir", default=DEFAULT_DIR, help="cluster directory (default %(default)s)")
    p.add_argument("--objectstore", choices=cluster.OBJECTSTORES, default="memstore")
    p.add_argument("--mon-port", type=int, default=None,
                   help="monitor msgr v1 port (the one the kernel client uses); default: a free one")
    p.add_argument("--osd-size-gib", type=int, default=8,
                   help="OSD capacity (memstore limit / sparse bluestore file), default %(default)s")
    p.add_argument("--mgr-modules", choices=cluster.MGR_MODULES, default=DEFAULT_MGR_MODULES,
                   help="mgr python modules to load (default %(default)s; 'none' for the TCG VM guest)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    p.add_argument("--no-install", action="store_true",
                   help="fail instead of apt-get installing missing Ceph packages")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    handler = {"start": _start, "stop": _stop, "status": _status, "restart-osd": _restart_osd}[args.command]
    try:
        return handler(args)
    except (cluster.ClusterError, RuntimeError) as e:
        sys.stderr.write("ceph-dev-cluster %s: error: %s\n" % (args.command, e))
        return 1
    except BrokenPipeError:  # output piped into `head`: the work itself is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
