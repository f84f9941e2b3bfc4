"""A crashed host's hold on an image taken over: a second Ceph client (the
"dead host") keeps a watch on the SR's image; after XAPI says the host is not
live, rbdsr.fence blocklists exactly that client instance -- its writes fail
from then on, while another client on the same IP (the "rebooted host")
keeps working."""
import uuid

import pytest
import rados
import rbd

from rbdsr import fence
from rbdsr.errors import RBDError
from tests.ceph import backendkit as kit

POOL_PREFIX = "h13f"  # tests/ceph/conftest.py names this module's pool

MiB = 1 << 20


class _Obj(object):
    def __init__(self, **calls):
        for k, v in calls.items():
            setattr(self, k, v)


class XapiStandIn(object):
    """The XAPI calls rbdsr.fence makes, with XAPI's names and fields."""

    def __init__(self, live, dconf, sr_uuid):
        hosts = {"OpaqueRef:h1": {"uuid": "host-1", "address": "127.0.0.1", "metrics": "OpaqueRef:m1",
                                  "PIFs": ["OpaqueRef:p1"]}}
        self.xenapi = _Obj(
            host=_Obj(get_by_uuid=lambda u: [r for r, h in hosts.items() if h["uuid"] == u][0],
                      get_metrics=lambda r: hosts[r]["metrics"], get_address=lambda r: hosts[r]["address"],
                      get_PIFs=lambda r: hosts[r]["PIFs"]),
            host_metrics=_Obj(get_live=lambda m: live),
            PIF=_Obj(get_record=lambda p: {"IP": "127.0.0.1", "IPv6": []}),
            PBD=_Obj(get_all_records=lambda: {"OpaqueRef:pbd": {"SR": "OpaqueRef:sr", "device_config": dconf}}),
            SR=_Obj(get_uuid=lambda r: sr_uuid),
            secret=_Obj(get_by_uuid=lambda u: u, get_value=lambda r: None))


def _client(ceph_cluster):
    c = rados.Rados(conffile=ceph_cluster.conf_path, rados_id="admin")
    c.connect(timeout=30)
    return c


def test_dead_hosts_client_instance_is_blocklisted(ceph_cluster, admin, pool):
    # the SR's own least-privilege user: 'profile rbd' may blocklist one instance
    cephx_id = "h13f-" + uuid.uuid4().hex[:6]
    key = kit.make_user(admin, cephx_id, pool)
    image = "h13f-" + uuid.uuid4().hex[:6]
    io = admin.open_ioctx(pool)
    rbd.RBD().create(io, image, 16 * MiB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
    dconf = dict(kit.dconf(ceph_cluster, pool, key, user=cephx_id), SCSIid=image)

    dead = _client(ceph_cluster)  # the crashed host's kernel client, still watching
    dead_io = dead.open_ioctx(pool)
    dead_img = rbd.Image(dead_io, image)
    dead_img.write(b"before", 0)
    try:
        # XAPI still thinks the host is live: nothing is done
        with pytest.raises(RBDError):
            fence.fence(XapiStandIn(True, dconf, "sr-1"), "host-1", apply=True, log=lambda m: None)
        # dry run: found, not blocklisted
        found = fence.fence(XapiStandIn(False, dconf, "sr-1"), "host-1", apply=False, log=lambda m: None)
        assert len(found) == 1 and found[0].startswith("127.0.0.1:")
        dead_img.write(b"still", 0)
        # for real
        found = fence.fence(XapiStandIn(False, dconf, "sr-1"), "host-1", apply=True, log=lambda m: None)
        assert len(found) == 1
        with pytest.raises((rbd.Error, rados.Error)):
            dead_img.write(b"after", 0)
            dead_img.flush()
        # the same IP, another instance (the rebooted host) is not locked out
        reborn = _client(ceph_cluster)
        with reborn.open_ioctx(pool) as rio, rbd.Image(rio, image) as img:
            img.write(b"reborn", 0)
            assert img.read(0, 6) == b"reborn"
        reborn.shutdown()
    finally:
        try:
            dead_img.close()
        except rbd.Error:
            pass
        dead.shutdown()
        rbd.RBD().remove(io, image)
        io.close()
