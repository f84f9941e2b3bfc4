"""Which SRs the hook diverts to RBDSR: port exactly 6789 (or rbd=true) --
checked as a pure decision and through sm's own entry point (the stand-in's
LVMoISCSISR script with the installer's hook), in both sm layouts."""
import pytest

import driverharness as h
from rbdsr.diversion import wants_rbd

KEY = "AQBOb9BkAAAAABAAcmVmbHVtbW94eWdlbmF0ZT0="  # shape of a cephx key; never valid for a cluster


@pytest.mark.parametrize("dconf,expected", [
    ({"port": "6789"}, True),
    ({"port": " 6789 "}, True),
    ({"port": 6789}, False),  # XAPI sends text; anything else is not a wizard's port
    ({"rbd": "true"}, True),
    ({"rbd": "TRUE", "port": "3260"}, True),
    ({"port": "3260"}, False),
    ({"port": "16789"}, False),
    ({"port": "67890"}, False),
    ({"port": "678"}, False),
    ({"port": "6789x"}, False),
    ({"port": ""}, False),
    ({}, False),
    ({"rbd": "false", "port": "3260"}, False),
    ({"rbd": "yes"}, False),
])
def test_wants_rbd(dconf, expected):
    assert wants_rbd(dconf) is expected


def test_wants_rbd_on_garbage():
    assert wants_rbd(None) is False and wants_rbd("port=6789") is False


@pytest.fixture(params=["flat", "package"], scope="module")
def tree(request, tmp_path_factory):
    t = h.SMTree(str(tmp_path_factory.mktemp("sm-" + request.param)), request.param)
    return t


def _probe(tree, dconf):
    refs = tree.seed(extra_hosts=0)
    # sm's stock iSCSI path needs the host's initiator name
    db = h.XenAPI.load_db(tree.db)
    for rec in db["host"].values():
        rec["other_config"]["iscsi_iqn"] = "iqn.2026-11.test:host0"
    h.XenAPI.save_db(db, tree.db)
    return tree.run(h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0]))


@pytest.mark.parametrize("port,code", [("3260", 141), ("16789", 141), ("67890", 142)])
def test_iscsi_ports_stay_on_sms_path(tree, port, code):
    r = _probe(tree, {"target": "127.0.0.1", "port": port, "targetIQN": "iqn.x", "SCSIid": "a b"})
    # sm's own iSCSI answers (no target reachable: ISCSITarget; port out of range:
    # ISCSIPort), nothing from RBDSR
    assert r.fault_code == code, r
    assert "RBDSR" not in r.smlog
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.parametrize("dconf", [
    {"port": "6789"},
    {"port": " 6789 "},
    {"rbd": "true"},
    {"rbd": "true", "port": "3260"},  # a wizard always sends a port: rbd=true wins over it
])
def test_rbd_ports_are_diverted(tree, dconf):
    d = {"target": "127.0.0.1", "targetIQN": "rbd", "SCSIid": "bad image", "chapuser": "admin",
         "chappassword": KEY}
    d.update(dconf)
    r = _probe(tree, d)
    # diverted, and RBDSR's own validation agrees it is an RBD SR: the first fault is the image name
    assert r.fault_code == 107, r  # ConfigSCSIid: "bad image" is not an image name
    assert "bad image" in r.fault_string
    origin = "__main__.LVHDoISCSISR" if tree.layout == "flat" else "sm.drivers.LVHDoISCSISR.LVHDoISCSISR"
    assert "diverted from %s to RBDSR" % origin in r.smlog, r.smlog
    assert "Traceback" not in r.stdout + r.stderr
    assert KEY not in r.smlog + r.stdout + r.stderr
