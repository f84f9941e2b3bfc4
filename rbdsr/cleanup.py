"""Unmap RBD SR images mapped on this host whose SR is not plugged here.

Kernel mappings do not survive a reboot, but they do survive what leaves them
behind: a failed attach whose device still had requests in flight to a dead
cluster (the driver cannot unmap it then), a toolstack restart, an admin's
interrupted sr-destroy. Run once at boot after XAPI has plugged its PBDs
(rbdsr-cleanup.service, installed by install_rbdsr.py) and by hand at any time:

    python3 -m rbdsr.cleanup [--yes]

Only mappings that a PBD of this host names (pool, namespace, image of an RBD
SR) and whose PBD is not currently_attached are touched, each under sm's own
SR lock so an attach in progress is never undercut. Nothing is deactivated and
nothing forced: a device an active LV (or anyone) holds stays mapped and is
reported.
"""
import argparse
import errno
import fcntl
import os
import sys
import time

from rbdsr import krbd, sysfs
from rbdsr.diversion import wants_rbd
from rbdsr.errors import RBDError, TimeoutError_
from rbdsr.xapilocal import run_command

SM_LOCK_DIR = "/var/lock/sm"
INVENTORY = "/etc/xensource-inventory"
LOCK_TIMEOUT = 30.0
UNMAP_TIMEOUT = 60.0


def _image_of(dconf):
    """(pool, namespace, image) a device-config names, or None."""
    iqn = str(dconf.get("targetIQN", "") or "").strip()
    image = str(dconf.get("SCSIid", "") or "").strip()
    if not iqn or not image or iqn.count("/") > 1:
        return None
    pool, _, ns = iqn.partition("/")
    return pool, ns, image


def stale(mapped, pbds):
    """[(MappedInfo, sr_uuid)] of mappings of RBD SRs none of whose PBDs here
    (pbds: [(sr_uuid, device_config, currently_attached)]) is attached."""
    by_image = {}
    for sr_uuid, dconf, attached in pbds:
        if not wants_rbd(dconf or {}):
            continue
        key = _image_of(dconf)
        if key:
            by_image.setdefault(key, []).append((sr_uuid, bool(attached)))
    out = []
    for info in mapped:
        srs = by_image.get((info.pool, info.namespace, info.image))
        if not srs or info.snap != sysfs.HEAD_SNAP or any(a for _u, a in srs):
            continue  # not an SR's, or plugged
        if len(set(u for u, _a in srs)) == 1:
            out.append((info, srs[0][0]))
    return out


class SRLock(object):
    """sm's per-SR lock (/var/lock/sm/<uuid>/sr, fcntl), taken with a bound."""

    def __init__(self, sr_uuid, timeout=LOCK_TIMEOUT, root=SM_LOCK_DIR):
        self.path = os.path.join(root, sr_uuid, "sr")
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    os.close(self.fd)
                    raise TimeoutError_("sm's lock %s was held for %.0f s" % (self.path, self.timeout))
                time.sleep(0.2)

    def __exit__(self, *exc):
        os.close(self.fd)


def this_host_pbds(session, host_uuid):
    host = session.xenapi.host.get_by_uuid(host_uuid)
    out = []
    for rec in session.xenapi.PBD.get_all_records().values():
        if rec.get("host") == host:
            out.append((session.xenapi.SR.get_uuid(rec["SR"]), rec.get("device_config") or {},
                        rec.get("currently_attached")))
    return out


def cleanup(session, host_uuid, apply=False, log=print, sysfs_root=sysfs.SYSFS, lock_root=SM_LOCK_DIR):
    """Find (and with apply=True unmap) stale mappings; returns their device ids."""
    done = []
    for info, sr_uuid in stale(sysfs.list_mapped(sysfs_root), this_host_pbds(session, host_uuid)):
        what = "rbd%d (%s/%s%s, SR %s)" % (info.dev_id, info.pool, info.namespace + "/" if info.namespace else "",
                                           info.image, sr_uuid)
        if not apply:
            log("stale: %s (use --yes to unmap)" % what)
            done.append(info.dev_id)
            continue
        try:
            with SRLock(sr_uuid, root=lock_root):
                # look again under sm's lock: an attach may have finished meanwhile
                pbds = this_host_pbds(session, host_uuid)
                if not [s for s in stale(sysfs.list_mapped(sysfs_root), pbds) if s[0].dev_id == info.dev_id]:
                    log("%s is in use again; left" % what)
                    continue
                krbd.unmap_device(info.dev_id, False, UNMAP_TIMEOUT, sysfs_root, what=what)
                log("unmapped stale %s" % what)
                done.append(info.dev_id)
        except RBDError as e:
            log("left %s: %s" % (what, e))
    return done


def local_host_uuid(path=INVENTORY):
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k == "INSTALLATION_UUID":
                return v.strip().strip("'\"")
    raise RBDError("no INSTALLATION_UUID in %s" % path)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m rbdsr.cleanup", description=__doc__.split("\n\n")[0])
    p.add_argument("--yes", action="store_true", help="unmap (default: only show)")
    a = p.parse_args(argv)

    def work(session):
        found = cleanup(session, local_host_uuid(), a.yes)
        return "%d stale mapping(s) %s" % (len(found), "unmapped" if a.yes else "found")
    return run_command("rbdsr.cleanup", work)


if __name__ == "__main__":
    sys.exit(main())
