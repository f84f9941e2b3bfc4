"""RBDSR inside each real sm tree (tests/smdom0.py), installed there by the
installer and run as XAPI runs it: the divert decision, bad device-config
answers, driver info, and against the Ceph dev cluster the wizard's first two
steps."""
import pytest

import driverharness as h
from rbdsr.config import CONFIG_KEYS
from rbdsr.smglue import probexml
from tests.unit.test_driver_errors import BAD, KEY, _dconf


@pytest.fixture(scope="module")
def tree(sm_source, tmp_path_factory):
    import realsm
    return realsm.RealSMTree(str(tmp_path_factory.mktemp("realsm-" + sm_source.name)), sm_source)


def _seed(tree):
    refs = tree.seed()
    db = h.XenAPI.load_db(tree.db)
    for rec in db["host"].values():
        rec["other_config"]["iscsi_iqn"] = "iqn.2026-11.test:host0"
    h.XenAPI.save_db(db, tree.db)
    return refs


@pytest.mark.parametrize("port", ["3260", "16789", "67890", "6789x"])
def test_iscsi_ports_are_not_diverted(tree, port):
    refs = _seed(tree)
    r = tree.run(h.method_call("sr_probe", {"target": "127.0.0.1", "port": port, "targetIQN": "iqn.x",
                                            "SCSIid": "36001405abcdef"}, host_ref=refs["hosts"][0]),
                 timeout=120)
    assert r.fault_code is not None, r
    assert "RBDSR" not in r.smlog  # sm's own iSCSI code answered


@pytest.mark.parametrize("switch", [{"port": "6789"}, {"port": " 6789 "}, {"port": "3260", "rbd": "true"},
                                    {"rbd": "TRUE"}], ids=["6789", "spaced", "rbd-true-3260", "rbd-no-port"])
def test_each_documented_switch_diverts(tree, switch):
    refs = _seed(tree)
    dconf = {"target": "127.0.0.1", "targetIQN": "rbd", "SCSIid": "bad image", "chapuser": "admin",
             "chappassword": KEY}
    dconf.update(switch)
    r = tree.run(h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0]))
    # diverted, and RBDSR agrees it is its SR: the first complaint is the image name
    assert r.fault_code == 107, r
    assert "diverted from %s to RBDSR" % tree.origin in r.smlog, r.smlog


@pytest.mark.parametrize("what,changes,code", BAD, ids=[b[0] for b in BAD])
def test_bad_device_config(tree, what, changes, code):
    refs = _seed(tree)
    dconf = _dconf(changes)
    r = tree.run(h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0]))
    assert r.fault_code == code, r
    assert "diverted from %s to RBDSR (sm shape %s)" % (tree.origin, tree.shape.key) in r.smlog, r.smlog
    assert "Traceback" not in r.stdout + r.stderr
    assert KEY not in r.smlog + r.stdout + r.stderr


def test_driver_info(tree):
    r = tree.run(h.method_call("sr_get_driver_info", {}), via="direct")
    assert r.ok, r
    assert r.value["name"] == "RBDSR"
    assert [c["key"] for c in r.value["configuration"]] == [k for k, _ in CONFIG_KEYS]
    assert "VDI_GENERATE_CONFIG" in r.value["capabilities"]


def test_wizard_steps_against_ceph(tree, ceph_cluster):
    cluster = ceph_cluster
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


def test_version_names_the_shape(tree):
    import subprocess
    p = subprocess.run([tree.python, tree.installed + "/RBDSR.py", "version"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, env=tree.env(), timeout=120)
    assert p.returncode == 0, p.stderr
    assert "sm shape: %s (" % tree.shape.key in p.stdout, p.stdout
    assert "Traceback" not in p.stdout + p.stderr
