"""sr_create refuses an image another SR's PBDs already name, before touching
Ceph (through the entry point, on the sm stand-in)."""
import pytest

import driverharness as h
from rbdsr.secret import make_cephx_key

KEY = make_cephx_key(b"create-test-key!")


@pytest.fixture(params=["flat", "package"], scope="module")
def tree(request, tmp_path_factory):
    return h.SMTree(str(tmp_path_factory.mktemp("create-" + request.param)), request.param)


def _dconf(**over):
    d = {"target": "127.0.0.1", "port": "6789", "targetIQN": "rbd", "SCSIid": "shared-img",
         "chapuser": "admin", "chappassword": KEY}
    d.update(over)
    return d


def _add_sr(tree, device_config):
    """A second SR (with a PBD on the first host) in the XAPI database."""
    db = h.XenAPI.load_db(tree.db)
    host = sorted(db["host"])[0]
    sr_uuid = h.new_uuid()
    sr_ref = h.XenAPI.new_ref("SR")
    db["SR"][sr_ref] = {"uuid": sr_uuid, "name_label": "other", "type": "lvmoiscsi", "sm_config": {},
                        "other_config": {}}
    db["PBD"][h.XenAPI.new_ref("PBD")] = {"uuid": h.new_uuid(), "SR": sr_ref, "host": host,
                                          "device_config": dict(device_config), "other_config": {}}
    h.XenAPI.save_db(db, tree.db)
    return sr_uuid


@pytest.mark.parametrize("other,refused", [
    (_dconf(), True),                                  # same pool and image
    (_dconf(port=" 6789 "), True),                     # the same RBD SR, port spelled with spaces
    (_dconf(SCSIid="other-img"), False),               # another image
    (_dconf(targetIQN="rbd/ns"), False),               # same name in a namespace
    (_dconf(port="3260", targetIQN="iqn.x"), False),   # an iSCSI SR
])
def test_image_named_by_another_sr(tree, other, refused):
    sr_uuid = h.new_uuid()
    mine = _dconf(timeout="2")
    refs = tree.seed(sr_uuid=sr_uuid, device_config=mine)
    other_uuid = _add_sr(tree, other)
    r = tree.run(h.method_call("sr_create", dict(mine, SRmaster="true"), sr_uuid=sr_uuid, sr_ref=refs["sr"],
                               host_ref=refs["hosts"][0], args=["0"]))
    assert "Traceback" not in r.stdout + r.stderr
    assert KEY not in r.smlog + r.stdout + r.stderr
    if refused:
        assert r.fault_code == 16, r
        assert "already used by SR %s" % other_uuid in r.fault_string
        assert "connected to Ceph" not in r.smlog  # refused before any Ceph access
    else:
        # passes the check, then fails for want of a cluster on 127.0.0.1:6789 -- not SRInUse
        assert r.fault_code is not None and r.fault_code != 16, r
