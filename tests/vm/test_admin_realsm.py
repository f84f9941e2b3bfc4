"""The `rbdsr` admin command on an SR that REAL sm made and attached (today's XCP-ng 8.3
tree of ../shared/sm, laid out and hooked in by realsm_lifecycle / realdom0; XAPI is the
stand-in): known data in several VDIs (vdi_create through sm; the test plays tapdisk's
part, as the lifecycle does), a snapshot while the SR is attached, more data, a second
snapshot; full + incremental exports restored with the real `rbd import` / `rbd
import-diff` and with `rbdsr import`, every byte checked; restore refused while XAPI has
the SR attached (nothing changed), done after sr_detach, the first data back after
sr_attach; a clone of the second snapshot made a new SR with --introduce (SR.introduce,
PBD.create, PBD.plug -> sm's sr_attach, SR.scan -> sm's sr_scan, through the stand-in)
beside the original on the same host: new VG, PV, SR and VDI uuids, the right data in
each. The admin command is the installed /usr/sbin/rbdsr; its credentials come from the
SR's PBD device-config (a XAPI secret), never from its command line."""
import hashlib
import os
import re
import subprocess

import pytest

import realdom0
import realsm_lifecycle as rl
from krbd_helpers import MIB, _get, remove_image
from vhdio import VHD

TREE = "xcpng-8.3"
IMAGE = "admin-realsm"
SR_SIZE = 128 * MIB
VDI_SIZE = 8 * MIB
OFFSETS = (0, 3 * MIB, VDI_SIZE - MIB)
UNWRITTEN = 5 * MIB          # allocated by vhd-util fill, never written: zeros
LABELS = ("disk-a", "disk-b", "disk-c")
RBDSR = "/usr/sbin/rbdsr"     # where the installer puts the admin command


def first(i):
    return [(off, 0x11 * (k + 1) + i) for k, off in enumerate(OFFSETS)]


def later(i):
    return [(off, 0x80 + 0x11 * k + i) for k, off in enumerate(OFFSETS)]


@pytest.fixture(scope="module", autouse=True)
def needs_shared():
    if not os.path.isdir(os.path.join(realdom0.SM_TREES, TREE)):
        if os.environ.get("CI"):
            pytest.fail("no real sm tree %s at %s: CI always has ../shared beside its clone"
                        % (TREE, realdom0.SM_TREES))
        pytest.skip("no real sm tree %s at %s (a clone without ../shared)" % (TREE, realdom0.SM_TREES))
    assert os.access("/usr/bin/vhd-util", os.X_OK), "the VM image has no /usr/bin/vhd-util"


def rbdsr(dom0, *args, **kw):
    """The installed admin command, as root on dom0 runs it (XAPI: the stand-in's records)."""
    p = subprocess.run([RBDSR] + [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, env=dom0.env(), timeout=600)
    print("$ rbdsr %s -> %d\n%s%s" % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
    want = kw.get("rc", 0)
    assert p.returncode == want, "rbdsr %s: rc %d, not %d\n%s%s" % (" ".join(map(str, args)), p.returncode,
                                                                    want, p.stdout, p.stderr)
    return p


def rbd_cli(ceph, *args):
    """The real rbd CLI with the test cluster's conf and admin keyring (a file, not a key)."""
    c = ceph.cluster
    return rl.sh(["rbd", "--conf", _get(c, "conf"), "--keyring", ceph.keyring] + [str(a) for a in args],
                 timeout=600).stdout


def image_sha(ceph, name, snap=None):
    import rbd
    h = hashlib.sha256()
    with rbd.Image(ceph.ioctx(), name, snapshot=snap, read_only=True) as img:
        size = img.size()
        for off in range(0, size, 4 * MIB):
            h.update(img.read(off, min(4 * MIB, size - off)))
    return size, h.hexdigest()


def snaps(ceph, name):
    import rbd
    with rbd.Image(ceph.ioctx(), name, read_only=True) as img:
        return [(s["name"], img.is_protected_snap(s["name"])) for s in img.list_snaps()]


def vdis_of(pool, sr_uuid):
    """{vdi uuid: record} of the SR's VDIs in XAPI."""
    db = pool.db()
    (ref,) = [r for r, rec in db["SR"].items() if rec["uuid"] == sr_uuid]
    return dict((v["uuid"], v) for v in db["VDI"].values() if v.get("SR") == ref)


def managed(vdis):
    """The VDIs a user sees (not sm's hidden "base copy")."""
    return [u for u, rec in vdis.items() if rec.get("managed", True)]


def marks_of(pattern):
    return tuple(byte for _, byte in pattern) + (0,)


def marks(vg, vdi):
    """What a VDI holds, through its VHD chain: the byte at each of OFFSETS (64 KiB of it,
    all the same) and at UNWRITTEN -- compared with marks_of(first(i)) / marks_of(later(i))."""
    out = []
    with rl.ActiveLVs(vg):
        v = VHD("/dev/%s/VHD-%s" % (vg, vdi))
        try:
            for off in OFFSETS + (UNWRITTEN,):
                data = v.read(off, 64 * 1024)
                assert data == data[:1] * len(data), "VDI %s: mixed data at %d" % (vdi, off)
                out.append(data[0])
        finally:
            v.close()
    return tuple(out)


def lvm_report(cmd, fields):
    out = rl.sh([cmd, "--noheadings", "--separator", "|", "-o", fields]).stdout
    return [tuple(x.strip() for x in ln.split("|")) for ln in out.splitlines() if ln.strip()]


def test_admin_through_real_sm(ceph, vm_results_dir, tmp_path):
    steps = rl.Steps("admin-" + TREE, vm_results_dir)
    images = [IMAGE, "admin-stock", "admin-mine", "admin-drill"]
    for name in images:
        remove_image(ceph.ioctx(), name)
    try:
        with rl.stand_in_dom0(TREE, vm_results_dir, str(tmp_path), "admin-" + TREE) as dom0:
            scenario(steps, dom0, ceph, tmp_path)
    finally:
        _remove_images(ceph, images)
    assert steps.rows and all(r["result"] == "ok" for r in steps.rows), steps.rows


def scenario(steps, dom0, ceph, tmp_path):
    key = ceph.key.reveal()
    rl.install(steps, dom0, realdom0.SHIPPED)
    pool = rl.rbd_pool(dom0, ceph, IMAGE, key, hosts=1)
    sr, vg = pool.sr_uuid, "VG_XenStorage-" + pool.sr_uuid

    with steps("sr_create + sr_attach through sm; vdi_create x3 + first data"):
        pool.call("sr_create", args=[str(SR_SIZE)])
        pool.call("sr_attach")
        pool.plug(0, True)
        vdis = [pool.vdi_create(VDI_SIZE, label=label) for label in LABELS]
        for i, vdi in enumerate(vdis):
            rl.write_data(vg, vdi, VDI_SIZE, first(i))
            rl.expect_pattern(vg, vdi, pattern=first(i), unwritten=UNWRITTEN)

    with steps("vdi_snapshot through sm: a VHD chain (hidden base) in the SR"):
        # the clone must keep it working: the parent locators name the base in the SR's VG
        snap_c = pool.vdi_snapshot(vdis[2])
        tree = rl.vhd_tree(vg)
        base = tree[vdis[2]][0]
        assert base and tree[snap_c][0] == base and tree[base][1], tree
        # sm introduces the hidden base too, as an unmanaged "base copy"
        old_vdis_all = vdis + [snap_c, base]
        assert sorted(vdis_of(pool, sr)) == sorted(old_vdis_all)
        assert not vdis_of(pool, sr)[base]["managed"]

    with steps("rbdsr snapshot while attached; later data; snapshot again"):
        s1 = rbdsr(dom0, "snapshot", sr, "--name", "first").stdout.split()[0]
        for i, vdi in enumerate(vdis):
            if vdi == vdis[2]:   # the leaf over the base has no blocks yet: tapdisk would allocate
                rl.write_data(vg, vdi, VDI_SIZE, later(i))
            else:
                rl.overwrite_data(vg, vdi, later(i))
            rl.expect_pattern(vg, vdi, pattern=later(i), unwritten=UNWRITTEN)
        rl.expect_pattern(vg, snap_c, pattern=first(2), unwritten=UNWRITTEN)
        s2 = rbdsr(dom0, "snapshot", sr, "--name", "second").stdout.split()[0]
        listed = rbdsr(dom0, "snapshots", sr).stdout
        assert [ln.split()[0] for ln in listed.splitlines()] == [s1, s2], listed
        assert sr in s1 and sr in s2
        want1, want2 = image_sha(ceph, IMAGE, s1), image_sha(ceph, IMAGE, s2)
        assert want1 != want2

    full, inc = str(tmp_path / "sr.full"), str(tmp_path / "sr.inc")
    with steps("rbdsr export full + incremental; the real rbd CLI imports the chain"):
        for args in (("--snapshot", s1, full), ("--snapshot", s2, "--since", s1, inc)):
            out = rbdsr(dom0, "export", sr, *args).stdout
            with open(args[-1], "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            assert out.split()[0] == digest
            # the checksum file is sha256sum's own format: checked without RBDSR
            check = subprocess.run(["sha256sum", "-c", args[-1] + ".sha256"], cwd=str(tmp_path),
                                   stdout=subprocess.PIPE, universal_newlines=True, timeout=120)
            assert check.returncode == 0, check.stdout
        rbd_cli(ceph, "import", "--no-progress", "--export-format", "2", full, "%s/admin-stock" % ceph.pool)
        rbd_cli(ceph, "import-diff", "--no-progress", inc, "%s/admin-stock" % ceph.pool)
        assert [s for s, _ in snaps(ceph, "admin-stock")] == [s1, s2]
        assert image_sha(ceph, "admin-stock") == want2   # the head, where import-diff made s2

    with steps("rbdsr import of the same chain"):
        rbdsr(dom0, "import", full, inc, "--image", "admin-mine", "--sr", sr)
        assert [s for s, _ in snaps(ceph, "admin-mine")] == [s1, s2]
        assert image_sha(ceph, "admin-mine") == want2

    with steps("rbdsr restore refused while attached, and while mapped: nothing changed"):
        head = image_sha(ceph, IMAGE)
        p = rbdsr(dom0, "restore", sr, "--snapshot", s1, rc=3)
        assert "attached on host0" in p.stderr and "nothing was changed" in p.stderr, p.stderr
        # XAPI's record says detached (stale), but this host still has the image mapped
        pool.plug(0, False)
        p = rbdsr(dom0, "restore", sr, "--snapshot", s1, rc=3)
        assert "still open by" in p.stderr and "nothing was changed" in p.stderr, p.stderr
        pool.plug(0, True)
        assert image_sha(ceph, IMAGE) == head and [s for s, _ in snaps(ceph, IMAGE)] == [s1, s2]
        for i, vdi in enumerate(vdis):
            rl.expect_pattern(vg, vdi, pattern=later(i), unwritten=UNWRITTEN)

    with steps("sr_detach through sm; restore; sr_attach + sr_scan: the first data"):
        pool.call("sr_detach")
        pool.plug(0, False)
        rbdsr(dom0, "restore", sr, "--snapshot", s1)
        assert image_sha(ceph, IMAGE) == want1
        pool.call("sr_attach")
        pool.plug(0, True)
        pool.call("sr_scan")
        assert sorted(vdis_of(pool, sr)) == sorted(old_vdis_all)
        for i, vdi in enumerate(vdis):
            rl.expect_pattern(vg, vdi, pattern=first(i), unwritten=UNWRITTEN)
        rl.expect_pattern(vg, snap_c, pattern=first(2), unwritten=UNWRITTEN)
        rl.vhd_check_all(vg)

    with steps("rbdsr clone --introduce: a new SR beside the original, through the XAPI stand-in and sm"):
        before = dict(pool.db()["PBD"])
        out = rbdsr(dom0, "clone", sr, "--snapshot", s2, "--image", "admin-drill", "--name-label", "drill",
                    "--introduce").stdout
        m = re.search(r"is SR ([0-9a-f-]{36})", out)
        assert m, out
        new = m.group(1)
        assert "introduced SR %s" % new in out and "scanned SR %s" % new in out, out
        drill = rl.sr_view(pool, new)
        new_vg = "VG_XenStorage-" + new
        db = drill.db()
        (pbd,) = [db["PBD"][p] for p in drill.refs["pbds"]]
        assert pbd["currently_attached"] and pbd["host"] == pool.refs["hosts"][0]
        assert pbd["device_config"]["SCSIid"] == "admin-drill" and "chappassword" not in pbd["device_config"]
        assert pbd["device_config"]["chappassword_secret"] != pool.dconf["chappassword_secret"]
        assert set(before) < set(db["PBD"]) and all(db["PBD"][p] == before[p] for p in before)
        assert db["SR"][drill.refs["sr"]]["type"] == "lvmoiscsi"

    with steps("sr_scan through sm on both SRs: distinct VG, PV, SR, VDI uuids; the right data"):
        pool.call("sr_scan")
        drill.call("sr_scan")
        old_vdis, new_vdis = vdis_of(pool, sr), vdis_of(drill, new)
        assert len(new_vdis) == len(old_vdis) == 5, (old_vdis, new_vdis)
        assert sorted(old_vdis) == sorted(old_vdis_all)
        assert not set(old_vdis) & set(new_vdis)
        assert sorted(v["name_label"] for v in old_vdis.values()) == \
            sorted(v["name_label"] for v in new_vdis.values())
        vgs = dict(lvm_report("vgs", "vg_name,vg_uuid"))
        assert vg in vgs and new_vg in vgs and vgs[vg] != vgs[new_vg], vgs
        pvs = dict((v, u) for u, v in lvm_report("pvs", "pv_uuid,vg_name"))
        assert pvs[vg] != pvs[new_vg], pvs
        assert new != sr
        # the original at the first snapshot, the clone at the second (its chain's base renamed)
        assert sorted(marks(vg, v) for v in managed(old_vdis)) == sorted(
            [marks_of(first(i)) for i in range(3)] + [marks_of(first(2))])
        assert sorted(marks(new_vg, v) for v in managed(new_vdis)) == sorted(
            [marks_of(later(i)) for i in range(3)] + [marks_of(first(2))])
        tree = rl.vhd_tree(new_vg)
        assert sorted(p for p, hidden in tree.values() if p) == 2 * [next(u for u, (p, h) in tree.items() if h)]
        rl.vhd_check_all(vg)
        rl.vhd_check_all(new_vg)
        assert (s2, True) in snaps(ceph, IMAGE)  # protected while the clone depends on it

    with steps("rbdsr flatten of the clone SR while attached; then its snapshot goes"):
        p = rbdsr(dom0, "remove-snapshot", sr, s2, rc=3)
        assert "has clones" in p.stderr and "admin-drill" in p.stderr, p.stderr
        rbdsr(dom0, "flatten", new)
        rbdsr(dom0, "remove-snapshot", sr, s2)
        assert [s for s, _ in snaps(ceph, IMAGE)] == [s1]
        assert sorted(marks(new_vg, v) for v in managed(new_vdis)) == sorted(
            [marks_of(later(i)) for i in range(3)] + [marks_of(first(2))])

    with steps("sr_detach of both through sm"):
        drill.call("sr_detach")
        drill.plug(0, False)
        pool.call("sr_detach")
        pool.plug(0, False)
    log = open(dom0.smlog).read() if os.path.exists(dom0.smlog) else ""
    assert key not in log


def _remove_images(ceph, images):
    """Best effort: the clone, then the snapshots (unprotected), then the images."""
    import rbd
    io = ceph.ioctx()
    for name in reversed(images):
        try:
            with rbd.Image(io, name) as img:
                for s in list(img.list_snaps()):
                    if img.is_protected_snap(s["name"]):
                        img.unprotect_snap(s["name"])
                    img.remove_snap(s["name"])
        except rbd.ImageNotFound:
            continue
        except rbd.Error as e:
            print("cleanup of %s: %s" % (name, e))
        try:
            remove_image(io, name)
        except rbd.Error as e:
            print("cleanup of %s: %s" % (name, e))
