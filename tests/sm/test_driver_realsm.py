"""RBDSR inside a real sm tree (SM_SRC: XCP-ng 8.3 flat and/or xapi-project/sm
master package layout), hooked by the installer's code, run as XAPI runs it:
the divert decision, bad device-config answers, driver info, and -- with the
Ceph fixture loaded (-p tests.cephfixture) -- the wizard's first two steps."""
import os

import pytest

import driverharness as h
from rbdsr.config import CONFIG_KEYS
from rbdsr.smglue import probexml
from tests.unit.test_driver_errors import BAD, KEY, _dconf

pytestmark = pytest.mark.skipif(
    not os.environ.get("SM_SRC"),
    reason="SM_SRC is not set: give sm source trees (os.pathsep-separated), "
           "e.g. SM_SRC=/work/ref/sm-8.3:/work/ref/sm-master")


def _sources():
    import realsm
    return realsm.sm_sources() if os.environ.get("SM_SRC") else []


@pytest.fixture(scope="module", params=_sources(), ids=lambda p: "%s-%s" % (os.path.basename(p[0]), p[1]))
def tree(request, tmp_path_factory):
    import realsm
    src, layout = request.param
    return realsm.RealSMTree(str(tmp_path_factory.mktemp("realsm-" + layout)), src, layout)


def _seed(tree):
    refs = tree.seed()
    db = h.XenAPI.load_db(tree.db)
    for rec in db["host"].values():
        rec["other_config"]["iscsi_iqn"] = "iqn.2026-11.test:host0"
    h.XenAPI.save_db(db, tree.db)
    return refs


def test_iscsi_port_is_not_diverted(tree):
    refs = _seed(tree)
    r = tree.run(h.method_call("sr_probe", {"target": "127.0.0.1", "port": "3260", "targetIQN": "iqn.x",
                                            "SCSIid": "36001405abcdef"}, host_ref=refs["hosts"][0]),
                 timeout=120)
    assert r.fault_code is not None, r
    assert "RBDSR" not in r.smlog


@pytest.mark.parametrize("what,changes,code", BAD, ids=[b[0] for b in BAD])
def test_bad_device_config(tree, what, changes, code):
    refs = _seed(tree)
    dconf = _dconf(changes)
    r = tree.run(h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0]))
    assert r.fault_code == code, r
    origin = "__main__.LVHDoISCSISR" if tree.layout == "flat" else "sm.drivers.LVHDoISCSISR.LVHDoISCSISR"
    assert "diverted from %s to RBDSR" % origin in r.smlog
    assert "Traceback" not in r.stdout + r.stderr
    assert KEY not in r.smlog + r.stdout + r.stderr


def test_driver_info(tree):
    r = tree.run(h.method_call("sr_get_driver_info", {}), via="direct")
    assert r.ok, r
    assert r.value["name"] == "RBDSR"
    assert [c["key"] for c in r.value["configuration"]] == [k for k, _ in CONFIG_KEYS]
    assert "VDI_GENERATE_CONFIG" in r.value["capabilities"]


@pytest.fixture
def cluster(request):
    try:
        return request.getfixturevalue("ceph_cluster")
    except pytest.FixtureLookupError:
        pytest.skip("the Ceph fixture is not loaded (run with -p tests.cephfixture)")


def test_wizard_steps_against_ceph(tree, cluster):
    refs = _seed(tree)
    dconf = {"target": cluster.mon_addr, "port": "6789", "chapuser": "admin",
             "chappassword": cluster.admin_key, "timeout": "20"}
    r = tree.run(h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0]))
    assert r.fault_code == 96, r
    pools = [t[3] for t in probexml.parse_targets(r.stderr)]
    assert cluster.pool in pools
    r = tree.run(h.method_call("sr_probe", dict(dconf, targetIQN=cluster.pool), host_ref=refs["hosts"][0]))
    assert r.fault_code == 107, r
    for lun in probexml.parse_luns(r.stderr):
        assert lun["vendor"] == "Ceph"
        assert lun["serial"] == probexml.stable_serial(cluster.fsid, cluster.pool, "", lun["SCSIid"])
    assert cluster.admin_key not in r.smlog + r.stdout + r.stderr
