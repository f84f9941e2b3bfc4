"""Fencing a dead host off its RBD images: blocklist exactly its Ceph client
instances, only after XAPI declares the host dead.

A host that crashed or was fenced leaves its kernel client's watch on each
image it had mapped, and XenServer HA restarts its VMs elsewhere. The images
are layering-only (no exclusive lock), so Ceph never blocklists anything by
itself: a half-dead dom0 could still write. The pool master runs

    python3 -m rbdsr.fence HOST-UUID            (shows what it would do)
    python3 -m rbdsr.fence HOST-UUID --yes      (does it)

which refuses unless XAPI's host_metrics say live=false, finds every RBD SR's
watchers whose IP is one of that host's addresses (its PIFs and management
address), and blocklists each such `ip:port/nonce` -- one client instance,
never an IP alone: the rebooted host gets a new nonce and is not locked out.
Blocklist entries expire (Ceph's default one hour, or --expire seconds).
"""
import argparse
import ipaddress
import sys

from rbdsr.clientaddr import instance_addr, parse_instance
from rbdsr.diversion import wants_rbd
from rbdsr.errors import ConfigError, RBDError
from rbdsr.xapilocal import run_command

def instances_of_host(watchers, host_ips):
    """The watchers whose IP is one of the dead host's addresses."""
    ips = set(str(ipaddress.ip_address(i)) for i in host_ips if i)
    out = []
    for w in watchers or []:
        try:
            ip, _port, _nonce = parse_instance(w)
        except ConfigError:
            continue
        if ip in ips:
            addr = instance_addr(w)
            if addr not in out:
                out.append(addr)
    return out


# -- XAPI (field names as XAPI has them) -------------------------------------

def host_is_dead(session, host_ref):
    """True only when XAPI says the host is not live (host_metrics.live false)."""
    metrics = session.xenapi.host.get_metrics(host_ref)
    return session.xenapi.host_metrics.get_live(metrics) is False


def host_ips(session, host_ref):
    ips = [session.xenapi.host.get_address(host_ref)]
    for pif in session.xenapi.host.get_PIFs(host_ref):
        rec = session.xenapi.PIF.get_record(pif)
        ips.append(rec.get("IP") or "")
        ips.extend(a.split("/")[0] for a in rec.get("IPv6") or [])
    good = []
    for ip in ips:
        try:
            good.append(str(ipaddress.ip_address(ip)))
        except ValueError:
            continue
    return good


def rbd_device_configs(session):
    """{sr_uuid: device_config} of every SR RBDSR serves (one PBD's config each)."""
    out = {}
    for rec in session.xenapi.PBD.get_all_records().values():
        dc = rec.get("device_config") or {}
        if wants_rbd(dc):
            out.setdefault(session.xenapi.SR.get_uuid(rec["SR"]), dc)
    return out


def _secret_reader(session):
    def read(uuid):
        return session.xenapi.secret.get_value(session.xenapi.secret.get_by_uuid(uuid))
    return read


def fence(session, host_uuid, apply=False, expire=None, log=print, opener=None):
    """Find (and with apply=True blocklist) the dead host's client instances.
    Returns the list of addresses."""
    from rbdsr.config import TargetConfig
    if opener is None:
        from rbdsr.backends import open_backend as opener
    host = session.xenapi.host.get_by_uuid(host_uuid)
    if not host_is_dead(session, host):
        raise RBDError("host %s is live according to XAPI: refusing to fence it" % host_uuid, key="SRInUse")
    ips = host_ips(session, host)
    log("host %s is dead; its addresses: %s" % (host_uuid, ", ".join(ips) or "none"))
    found = []
    for sr_uuid, dc in sorted(rbd_device_configs(session).items()):
        cfg = TargetConfig.from_dconf(dc, secret_reader=_secret_reader(session))
        backend = opener(cfg)
        try:
            watchers = backend.image_info(cfg.pool, cfg.namespace, cfg.image).watchers
            for addr in instances_of_host(watchers, ips):
                log("SR %s image %s: client instance %s of the dead host%s"
                    % (sr_uuid, cfg.image, addr, "" if apply else " (use --yes to blocklist)"))
                if apply and addr not in found:
                    backend.blocklist_add(addr, expire)
                    log("blocklisted %s" % addr)
                if addr not in found:
                    found.append(addr)
        finally:
            backend.close()
    return found


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m rbdsr.fence", description=__doc__.split("\n\n")[0])
    p.add_argument("host_uuid")
    p.add_argument("--yes", action="store_true", help="blocklist (default: only show)")
    p.add_argument("--expire", type=int, default=None, help="seconds the blocklist entry lasts")
    a = p.parse_args(argv)

    def work(session):
        found = fence(session, a.host_uuid, a.yes, a.expire)
        return "%d client instance(s) %s" % (len(found), "blocklisted" if a.yes else "found")
    return run_command("rbdsr.fence", work)


if __name__ == "__main__":
    sys.exit(main())
