"""sm runs sr_scan after every master sr_attach, even a failed one (SRCommand's
finally): on a host where the image is not mapped, RBDSR must answer with a
clear SRUnavailable, not an error about a missing device node."""
import driverharness as h


def test_scan_of_an_unattached_sr_says_so(ceph_cluster, tmp_path):
    tree = h.SMTree(str(tmp_path / "sm"), "flat")
    sr_uuid = h.new_uuid()
    dconf = {"target": ceph_cluster.mon_addr, "port": "6789", "targetIQN": "rbd",
             "SCSIid": "never-mapped-here", "chapuser": "admin",
             "chappassword": ceph_cluster.admin_key, "SRmaster": "true", "timeout": "20"}
    refs = tree.seed(sr_uuid=sr_uuid, device_config=dconf)
    r = tree.run(h.method_call("sr_scan", dconf, sr_uuid=sr_uuid, sr_ref=refs["sr"],
                               host_ref=refs["hosts"][0]))
    assert r.fault_code == 47, r
    assert "not mapped on this host" in r.fault_string
    assert "Traceback" not in r.stdout + r.stderr
    assert ceph_cluster.admin_key not in r.stdout + r.stderr + r.smlog
