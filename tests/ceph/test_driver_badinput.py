"""Bad device-config through the driver's real entry point, against the real
cluster: every entry of the config table (tests/unit/test_config.py BAD, made
to point at the dev cluster where a field is not the bad one) must come back
as an XML-RPC fault with its sm error number, with no traceback, no secret in
SMlog, stdout or stderr, and no pool, image or metadata changed."""
import os

import pytest

import driverharness as h
from rbdsr.errors import XENERROR_KEYS
from rbdsr.smglue import probexml
from rbdsr.diversion import wants_rbd
from tests.ceph import backendkit as kit
from tests.unit import test_config as table

POOL_PREFIX = "h5bad"  # tests/ceph/conftest.py names this module's pool
SECRETS = [table.KEY, "my-ssh-password!", "pw"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    return dict((layout, h.SMTree(str(tmp_path_factory.mktemp("bad-" + layout)), layout))
                for layout in ("flat", "package"))


def realistic(dconf, cluster, pool):
    """The table's dconf with the fields that are not under test pointing at the dev cluster."""
    d = dict(dconf)
    if d.get("target") == "10.0.0.1":
        d["target"] = cluster.mon_addr
    if d.get("targetIQN") == "rbd":
        d["targetIQN"] = pool
    if d.get("chappassword") == table.KEY and d.get("chapuser") == "xen":
        d["chapuser"], d["chappassword"] = "admin", cluster.admin_key
    d.setdefault("timeout", "10")
    return d


# XAPI's device-config is a string -> string map and argv cannot carry NUL:
# entries with other values cannot reach the driver (sm's SR.__init__ would fail first).
ENTRIES = [b for b in table.BAD
           if all(isinstance(v, str) and "\x00" not in v for v in b[1].values())]


def test_table_is_big_enough():
    assert len(ENTRIES) >= 40


@pytest.fixture(scope="module")
def before(admin, pool):
    return kit.snapshot(admin)


@pytest.mark.parametrize("name,dconf,key,fragment", ENTRIES, ids=[b[0] for b in ENTRIES])
def test_bad_input(trees, ceph_cluster, pool, before, name, dconf, key, fragment):
    d = realistic(dconf, ceph_cluster, pool)
    code = XENERROR_KEYS[key]
    sr_uuid = h.new_uuid()
    runs = [("flat", "sr_create"), ("package", "sr_probe"), ("flat", "sr_attach")]
    for layout, command in runs:
        tree = trees[layout]
        refs = tree.seed(sr_uuid=sr_uuid, device_config=d)
        dc = dict(d, SRmaster="true")
        if command == "sr_probe":
            call = h.method_call(command, dc, host_ref=refs["hosts"][0])
        else:
            call = h.method_call(command, dc, sr_uuid=sr_uuid, sr_ref=refs["sr"], host_ref=refs["hosts"][0],
                                 args=["0"] if command == "sr_create" else [])
        # an SR the hook does not divert (port not 6789) is run as RBDSR directly
        r = tree.run(call, via="hook" if wants_rbd(d) else "direct")
        assert r.fault_code == code, (layout, command, r)
        out = r.stdout + r.stderr
        assert "Traceback" not in out
        for s in SECRETS + [ceph_cluster.admin_key]:
            assert s not in r.smlog and s not in out, (layout, command)
        if not d.get("targetIQN"):
            # no pool given: sm's answer is the wizard's pool list, then ConfigTargetIQNMissing
            assert pool in [t[3] for t in probexml.parse_targets(r.stderr)]
            continue
        assert r.stderr == "", r  # refused before any wizard output
        assert fragment in r.fault_string or key == "InvalidSecret", r.fault_string


def test_nothing_changed(admin, before):
    assert kit.snapshot(admin) == before
    if os.path.isdir("/sys/bus/rbd/devices"):
        assert os.listdir("/sys/bus/rbd/devices") == []
