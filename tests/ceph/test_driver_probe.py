"""The SR wizard against the real dev cluster, through the driver's real
entry point (sm's LVMoISCSISR script + the hook, as XAPI runs it), on the
flat and the package sm layouts: step 1 lists the pools, step 2 the images,
each element checked against what the cluster holds. Step 3 needs krbd (the
VM tier); here it must fail cleanly and change nothing."""
import os
import uuid

import pytest
import rbd

import driverharness as h
from rbdsr.smglue import probexml
from tests.ceph import backendkit as kit

POOL_PREFIX = "h5"  # tests/ceph/conftest.py names this module's pool

MiB = 1 << 20


@pytest.fixture(scope="module")
def images(admin, pool):
    """A few images of distinct sizes (and one name that prefixes another)."""
    made = {"vm1": 64 * MiB, "vm10": 96 * MiB, "sr-disk": 128 * MiB}
    with admin.open_ioctx(pool) as io:
        for name, size in made.items():
            rbd.RBD().create(io, name, size, old_format=False, features=1)
    return made


@pytest.fixture(params=["flat", "package"], scope="module")
def tree(request, tmp_path_factory):
    return h.SMTree(str(tmp_path_factory.mktemp("probe-" + request.param)), request.param)


def base_dconf(cluster, **extra):
    d = {"target": cluster.mon_addr, "port": "6789", "chapuser": "admin",
         "chappassword": cluster.admin_key, "timeout": "20"}
    d.update(extra)
    return d


def probe(tree, dconf):
    refs = tree.seed()
    return tree.run(h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0]))


def rbd_pools(admin):
    pools = []
    for name in admin.list_pools():
        detail = kit.mon(admin, prefix="osd pool application get", pool=name)
        if "rbd" in (detail or {}):
            pools.append(name)
    return sorted(pools)


def test_step1_lists_the_pools(tree, ceph_cluster, admin, pool, images):
    r = probe(tree, base_dconf(ceph_cluster))
    assert r.fault_code == 96, r  # ConfigTargetIQNMissing, as sm answers a target-only probe
    targets = probexml.parse_targets(r.stderr)
    assert sorted(t[3] for t in targets) == rbd_pools(admin)
    assert pool in [t[3] for t in targets]
    host, port = ceph_cluster.mon_addr.rsplit(":", 1)
    for i, (index, address, tport, _) in enumerate(targets):
        assert index == str(i)
        # the diversion port comes back as Port; a monitor port other than 6789 stays in the address
        assert tport == "6789"
        assert address == (host if port == "6789" else "%s:%s" % (host, port))
    assert "Traceback" not in r.stdout + r.stderr
    assert ceph_cluster.admin_key not in r.smlog + r.stdout + r.stderr


def test_step2_lists_the_images(tree, ceph_cluster, pool, images):
    r = probe(tree, base_dconf(ceph_cluster, targetIQN=pool))
    assert r.fault_code == 107, r  # ConfigSCSIid
    luns = probexml.parse_luns(r.stderr)
    names = sorted(images)
    assert [lun["SCSIid"] for lun in luns] == names
    for i, lun in enumerate(luns):
        assert lun["vendor"] == "Ceph"
        assert lun["LUNid"] == str(i)
        assert int(lun["size"]) == images[lun["SCSIid"]]
        assert lun["serial"] == probexml.stable_serial(ceph_cluster.fsid, pool, "", lun["SCSIid"])
    assert len(set(lun["serial"] for lun in luns)) == len(luns)
    assert ceph_cluster.admin_key not in r.smlog + r.stdout + r.stderr


def test_step2_with_a_least_privilege_user(tree, ceph_cluster, admin, pool, images):
    cephx_id = "h5-wiz-" + uuid.uuid4().hex[:6]
    key = kit.make_user(admin, cephx_id, pool)
    r = probe(tree, base_dconf(ceph_cluster, targetIQN=pool, chapuser=cephx_id, chappassword=key))
    assert r.fault_code == 107, r
    assert [lun["SCSIid"] for lun in probexml.parse_luns(r.stderr)] == sorted(images)
    assert key not in r.smlog + r.stdout + r.stderr


def test_key_from_a_xapi_secret(tree, ceph_cluster, pool, images):
    key = ceph_cluster.admin_key
    refs = tree.seed(secrets=[key])
    dconf = base_dconf(ceph_cluster, targetIQN=pool)
    del dconf["chappassword"]
    dconf["chappassword_secret"] = refs["secrets"][key]
    r = tree.run(h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0]))
    assert r.fault_code == 107, r
    assert len(probexml.parse_luns(r.stderr)) == len(images)
    assert key not in r.smlog + r.stdout + r.stderr


def test_wrong_key_is_a_login_error(tree, ceph_cluster, pool):
    from rbdsr.secret import make_cephx_key
    wrong = make_cephx_key(os.urandom(16))
    r = probe(tree, base_dconf(ceph_cluster, targetIQN=pool, chappassword=wrong))
    assert r.fault_code == 68, r  # ISCSILogin: Ceph refused the credentials
    assert "Traceback" not in r.stdout + r.stderr
    assert wrong not in r.smlog + r.stdout + r.stderr


def test_missing_pool_is_reported(tree, ceph_cluster):
    r = probe(tree, base_dconf(ceph_cluster, targetIQN="no-such-pool-h5"))
    assert r.fault_code is not None and r.fault_code != 107, r
    assert "no-such-pool-h5" in r.fault_string
    assert "Traceback" not in r.stdout + r.stderr


def test_step3_without_krbd_fails_cleanly(tree, ceph_cluster, admin, pool, images):
    before = kit.snapshot(admin)
    r = probe(tree, base_dconf(ceph_cluster, targetIQN=pool, SCSIid="sr-disk"))
    if os.path.isdir("/sys/bus/rbd"):
        pytest.skip("this kernel has krbd: step 3 is covered by the VM tier")
    assert r.fault_code == 47, r  # SRUnavailable: the rbd module cannot be loaded here
    assert "rbd" in r.fault_string
    assert "Traceback" not in r.stdout + r.stderr
    assert kit.snapshot(admin) == before


def test_direct_entry_point_answers_the_same(tree, ceph_cluster, pool, images):
    refs = tree.seed()
    call = h.method_call("sr_probe", base_dconf(ceph_cluster, targetIQN=pool), host_ref=refs["hosts"][0])
    hooked, direct = tree.run(call), tree.run(call, via="direct")
    assert hooked.fault_code == direct.fault_code == 107
    assert probexml.parse_luns(hooked.stderr) == probexml.parse_luns(direct.stderr)
