"""Hostile XML-RPC calls through the real entry point, on every real sm tree
(today's XCP-ng 8.3 first), against a real Ceph cluster whose state is itself
hostile (unshareable features, an image another SR claims, a clone, a pool
without the rbd application, a user without caps).

Each row of tests/sm/hostile.py is run as XAPI runs a driver: sm's launcher
/opt/xensource/sm/LVMoISCSISR with the call in argv[1], RBDSR installed by
the real installer. Every row must give a clean fault: the sm error the row
names (from the tree's own error table), no traceback anywhere, the cluster
key / SSH password in none of stdout, stderr, the fault and the SMlog lines
RBDSR writes, and nothing changed: Ceph's images (sizes, metadata), the
kernel's RBD mappings, the host's volume groups and the dom0 root tree.

The last test counts the rows that actually ran and passed on each tree: at
least 60 distinct hostile inputs that reached RBDSR (sm's own parser gate is
counted apart)."""
import os
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest
import rbd

import driverharness as h
import hostile
from tests.ceph import backendkit as kit
from tests.unit import smtrees

SR_UUID = "7d3c5b2e-4f61-4a8e-9c0d-1b2a3c4d5e6f"
OTHER_SR = "a1b2c3d4-e5f6-4711-8899-aabbccddeeff"
PASSWORD = "ssh-pass-Zq8!rbdsr-hostile"
CANARY = "/tmp/rbdsr-hostile-pwned"
MiB = 1 << 20
# rows whose secret-shaped value sm itself logs before any RBDSR code runs:
# SR.__init__ logs "Setting LVM_DEVICE to /dev/disk/by-scsid/<SCSIid>" (sm, not RBDSR)
SM_OWN_LOG = {"dc-key-in-image": "Setting LVM_DEVICE to /dev/disk/by-scsid/"}

PASSED = {}   # sm tree -> ids of table rows that ran and passed


@pytest.fixture(scope="session")
def hostile_ceph(ceph_cluster, tmp_path_factory):
    admin = kit.admin(ceph_cluster)
    pool = kit.make_pool(admin, "hostile")
    plain = "hostile-plain-" + uuid.uuid4().hex[:6]
    kit.mon(admin, prefix="osd pool create", pool=plain, pg_num=8, pgp_num=8)  # no rbd application
    lp_id = "hostile-lp-" + uuid.uuid4().hex[:6]
    lp_key = kit.make_user(admin, lp_id, pool)
    with admin.open_ioctx(pool) as io:
        r = rbd.RBD()
        r.create(io, "ours", 64 * MiB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(io, "ours") as img:
            img.metadata_set("rbdsr.sr_uuid", SR_UUID)
        r.create(io, "feat", 64 * MiB, old_format=False,
                 features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
                 | rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF)
        r.create(io, "other", 64 * MiB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(io, "other") as img:
            img.metadata_set("rbdsr.sr_uuid", OTHER_SR)
        r.create(io, "parent", 64 * MiB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(io, "parent") as img:
            img.create_snap("s1")
            img.protect_snap("s1")
        r.clone(io, "parent", "s1", io, "child", features=rbd.RBD_FEATURE_LAYERING)
    scratch = str(tmp_path_factory.mktemp("hostile-scratch"))
    os.mkfifo(os.path.join(scratch, "fifo"))
    with open(os.path.join(scratch, "huge"), "wb") as f:
        f.truncate(64 * MiB)   # sparse: a keyring reader must not slurp it
    os.symlink("/etc/shadow", os.path.join(scratch, "to-shadow"))
    yield {"cluster": ceph_cluster, "admin": admin, "pool": pool, "plain": plain, "lp_id": lp_id,
           "lp_key": lp_key, "scratch": scratch}
    kit.remove_pool(admin, pool)
    kit.remove_pool(admin, plain)
    admin.shutdown()


def _error_numbers(tree):
    for rel in ("opt/xensource/sm/XE_SR_ERRORCODES.xml", "usr/share/sm/XE_SR_ERRORCODES.xml"):
        path = os.path.join(tree.root, rel)
        if os.path.isfile(path):
            return dict((c.findtext("name").strip(), int(c.findtext("value")))
                        for c in ET.parse(path).getroot().iter("code"))
    raise AssertionError("no XE_SR_ERRORCODES.xml under %s" % tree.root)


@pytest.fixture(scope="module")
def tree(sm_source, tmp_path_factory, hostile_ceph):
    import realsm
    t = realsm.RealSMTree(str(tmp_path_factory.mktemp("hostile-" + sm_source.name)), sm_source)
    env = hostile_ceph
    ctx = hostile.Ctx(env["cluster"], env["pool"], env["plain"], env["cluster"].admin_key, env["lp_id"],
                      env["lp_key"], SR_UUID, None, lambda name: os.path.join(env["scratch"], name),
                      PASSWORD, "other")
    refs = t.seed(sr_uuid=SR_UUID, device_config=ctx.dconf(SRmaster=None), secrets=[ctx.key])
    db = h.XenAPI.load_db(t.db)
    for rec in db["host"].values():
        rec["other_config"]["iscsi_iqn"] = "iqn.2026-11.test:host0"
    # another SR whose PBD names image "other" of the same pool
    other_ref = h.XenAPI.new_ref("SR")
    db["SR"][other_ref] = {"uuid": OTHER_SR, "name_label": "another rbd sr", "type": "lvmoiscsi",
                           "sm_config": {}, "other_config": {}, "shared": True}
    db["PBD"][h.XenAPI.new_ref("PBD")] = {"uuid": str(uuid.uuid4()), "SR": other_ref, "host": refs["hosts"][0],
                                          "device_config": ctx.dconf(SCSIid="other", SRmaster=None),
                                          "other_config": {}, "currently_attached": True}
    h.XenAPI.save_db(db, t.db)
    ctx.refs = refs
    t.ctx = ctx
    t.errors = _error_numbers(t)
    PASSED.setdefault(sm_source.name, set())
    return t


def _mapped():
    top = "/sys/bus/rbd/devices"
    return sorted(os.listdir(top)) if os.path.isdir(top) else None


def _vgs():
    p = subprocess.run(["vgs", "--noheadings", "-o", "vg_name,vg_uuid,pv_count,lv_count"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60)
    return p.returncode, sorted(p.stdout.split("\n"))


def _host_locks():
    """sm's lock directories on this host (outside the dom0 root: sm's lock.py
    hard-codes /var/lock/sm); the SR's own may appear, nothing else."""
    top = "/var/lock/sm"
    return set(os.listdir(top)) - {SR_UUID} if os.path.isdir(top) else set()


def _state(tree, env):
    return {"ceph": kit.snapshot(env["admin"]), "mapped": _mapped(), "vgs": _vgs(),
            "root": smtrees.tree_state(tree.root), "canary": os.path.lexists(CANARY),
            "locks": _host_locks()}


def _secret_lines(text, secrets, allowed_prefix=None):
    bad = []
    for line in text.splitlines():
        if any(s in line for s in secrets):
            if allowed_prefix and allowed_prefix in line and "RBDSR" not in line:
                continue
            bad.append(line[:300])
    return bad


def _run_row(tree, env, row_id, expect, build, must_divert):
    ctx = tree.ctx
    call = build(ctx)
    before = _state(tree, env)
    r = tree.run(call, timeout=120)
    after = _state(tree, env)
    assert r.parse_error is None, r
    assert r.fault_code == tree.errors[expect], "%s: expected %s (%d), got %r" % (
        row_id, expect, tree.errors[expect], r)
    out = r.stdout + r.stderr + (r.fault_string or "")
    assert "Traceback" not in out, r
    assert "Traceback" not in r.smlog
    secrets = [ctx.key, ctx.password, env["lp_key"]]
    assert not [s for s in secrets if s in out], "secret in the driver's output: %r" % r
    assert not _secret_lines(r.smlog, secrets, SM_OWN_LOG.get(row_id)), _secret_lines(r.smlog, secrets)
    diverted = "diverted from %s to RBDSR" % tree.origin in r.smlog
    assert diverted == must_divert, ("RBDSR %s" % ("never ran" if must_divert else "ran"), r.smlog[-3000:])
    if must_divert:
        # the fault is RBDSR's own, with a reason (never a bare sm error nor a Python exception text)
        assert r.fault_string and re.search(r"\w", r.fault_string), r
    assert after["locks"] <= before["locks"], "sm lock paths made: %r" % (after["locks"] - before["locks"])
    for what in ("ceph", "mapped", "vgs", "canary"):
        assert after[what] == before[what], "%s changed: %r -> %r" % (what, before[what], after[what])
    assert smtrees.diff_states(before["root"], after["root"]) == []
    return r


@pytest.mark.parametrize("row_id,expect,build", hostile.ROWS, ids=[r[0] for r in hostile.ROWS])
def test_hostile_call(tree, hostile_ceph, row_id, expect, build):
    _run_row(tree, hostile_ceph, row_id, expect, build, must_divert=True)
    PASSED[tree.src.name].add(row_id)


@pytest.mark.parametrize("row_id,expect,build", hostile.SM_GATE, ids=[r[0] for r in hostile.SM_GATE])
def test_sm_parser_gate(tree, hostile_ceph, row_id, expect, build):
    """Calls sm itself refuses before the driver is built: RBDSR never runs, nothing changes."""
    _run_row(tree, hostile_ceph, row_id, expect, build, must_divert=False)


def test_at_least_60_hostile_inputs_reached_rbdsr(tree, request):
    ran = PASSED.get(tree.src.name, set())
    # into the JUnit report (.ci/reports/sm.xml) as a property of this test
    request.node.user_properties.append(("hostile_inputs_reaching_rbdsr", len(ran)))
    print("%s: %d distinct hostile inputs reached RBDSR through sm's launcher and failed cleanly"
          % (tree.src.name, len(ran)))
    assert len(ran) >= 60, sorted(set(r[0] for r in hostile.ROWS) - ran)
