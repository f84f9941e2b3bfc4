"""The whole SR and VDI lifecycle through REAL sm on a real kernel (VM lab), per sm tree of
../shared/sm: the guest is laid out as that dom0 (tests/vm/realdom0.py), RBDSR is hooked in
with `install_rbdsr.py enable --root /`, and every step runs sm's LVMoISCSISR script with
the XML-RPC call in argv[1], as XAPI does.

install; wizard steps 1-3 (sr_probe); sr_create; sr_attach on the master and a second host;
vdi_create (VHD) + data; vdi_snapshot; vdi_clone; vdi_resize; vdi_attach/vdi_detach;
vdi_delete; sm's GC (cleanup.py, started by sm through `systemctl start SMGC@<sr>`, run to
its end by the systemctl stand-in); the leaf coalesce after the snapshot is deleted, the
data written before the snapshot still there; image grow -> sr_scan/sr_update grow the SR;
HA vdi_generate_config -> vdi_attach_from_config without a XAPI session; sr_detach on both
hosts, sr_delete, disable and the sm tree byte-identical. Every VHD passes `vhd-util check`.

Not run, because this VM cannot: vdi_activate/vdi_deactivate (tapdisk needs XenServer's
blktap kernel driver; with sm's ATOMIC_PAUSE, vdi_attach/vdi_detach do not touch the LV).
The test therefore plays tapdisk's part for the data: it activates the VDI's LVs itself,
allocates every block with `vhd-util fill -b`, writes the data in place and reads it back through
the VHD chain with tests/vm/vhdio.py (qemu-io, format vpc, agrees where the VHD has no parent;
its own writes would clobber the batmap XenServer's VHDs keep after the BAT).
"""
import os
import re
import shutil
import subprocess
import sys
import time
import xml.dom.minidom
import xmlrpc.client

import pytest

import realdom0
from krbd_helpers import MIB, unmap_all
from realdom0 import Dom0, Pool, dump_json
from vhdio import VHD

REPO = realdom0.REPO
IMAGE = "realsm-sr"
SR_SIZE = 512 * MIB
VDI_SIZE = 64 * MIB
# where the data goes: (offset in the virtual disk, the byte repeated there)
PATTERN = ((0, 0x5A), (20 * MIB, 0xA7), (VDI_SIZE - MIB, 0x3C))
GC_TIMEOUT = 900


def _lifecycle_params():
    out = []
    for tree_id, lvm, works, reason in realdom0.LIFECYCLES:
        marks = [] if works else [pytest.mark.xfail(strict=True, reason="not supported yet: " + reason)]
        out.append(pytest.param(tree_id, lvm, id="%s-lvm-%s" % (tree_id, lvm or "shipped"), marks=marks))
    return out


@pytest.fixture(scope="module", autouse=True)
def needs_shared():
    if not os.path.isdir(realdom0.SM_TREES):
        pytest.skip("no real sm trees at %s (a clone without ../shared)" % realdom0.SM_TREES)
    assert os.access("/usr/bin/vhd-util", os.X_OK), \
        "the VM image has no /usr/bin/vhd-util (built from ../shared/blktap by tools/vmlab/imagebuild.py)"


class Steps(object):
    """Names each step, times it, keeps a table for the results share."""

    def __init__(self, tree_id, results):
        self.tree_id = tree_id
        self.path = os.path.join(results, "realsm-steps-%s.json" % tree_id)
        self.rows = []

    def __call__(self, name):
        steps = self

        class _Step(object):
            def __enter__(self):
                self.t = time.monotonic()
                print("\n[%s] >>> %s" % (steps.tree_id, name), flush=True)

            def __exit__(self, et, ev, tb):
                dt = time.monotonic() - self.t
                status = "ok" if et is None else "FAILED: %s" % (ev,)
                steps.rows.append({"step": name, "seconds": round(dt, 1), "result": status[:500]})
                dump_json(steps.path, steps.rows)
                print("[%s] <<< %s %.1f s" % (steps.tree_id, "ok" if et is None else "FAILED", dt), flush=True)
                return False
        return _Step()


def sh(argv, timeout=300, check=True, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s: rc %d\n%s\n%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def installer(*args):
    return sh([sys.executable, os.path.join(REPO, "install_rbdsr.py")] + list(args) + ["--root", "/"],
              check=False)


def lvs(vg):
    out = sh(["lvs", "--noheadings", "-o", "lv_name,lv_size,lv_attr", "--units", "b", "--nosuffix", vg]).stdout
    return dict((f[0], (int(f[1]), f[2])) for f in (line.split() for line in out.splitlines()) if f)


class ActiveLVs(object):
    """The test in tapdisk's place: the VDI LVs active for the duration of a with block."""

    def __init__(self, vg, names=None):
        self.vg = vg
        self.names = names

    def __enter__(self):
        have = lvs(self.vg)
        self.done = [n for n in self.names or [n for n in have if n.startswith("VHD-")] if have[n][1][4] != "a"]
        if self.done:
            sh(["lvchange", "-ay"] + ["%s/%s" % (self.vg, n) for n in self.done])
        return self

    def __exit__(self, *exc):
        if self.done:
            sh(["lvchange", "-an"] + ["%s/%s" % (self.vg, n) for n in self.done], check=False)
        return False


def vhd_check_all(vg):
    """`vhd-util check` on every VHD LV of the SR; returns {lv: 'valid'}."""
    out = {}
    with ActiveLVs(vg):
        for name in sorted(n for n in lvs(vg) if n.startswith("VHD-")):
            p = sh(["vhd-util", "check", "-n", "/dev/%s/%s" % (vg, name)], check=False)
            assert p.returncode == 0 and "is valid" in p.stdout, "vhd-util check %s: %s %s" % (name, p.stdout, p.stderr)
            out[name] = "valid"
    return out


def vhd_tree(vg):
    """{vdi uuid: parent uuid or None, hidden} from vhd-util scan, sm's own view of the chains."""
    with ActiveLVs(vg):
        p = sh(["vhd-util", "scan", "-f", "-m", "VHD-*", "-l", vg])
    tree = {}
    for line in p.stdout.splitlines():
        m = re.search(r"vhd=(\S+).*?hidden=(\d).*?parent=(\S+)", line)
        if m:
            uuid = m.group(1).replace("VHD-", "")
            parent = None if m.group(3) == "none" else m.group(3).replace("VHD-", "")
            tree[uuid] = (parent, m.group(2) == "1")
    return tree


def expect_pattern(vg, vdi, also_qemu=False):
    path = "/dev/%s/VHD-%s" % (vg, vdi)
    with ActiveLVs(vg):
        v = VHD(path)
        try:
            for off, byte in PATTERN:
                assert v.read(off, 64 * 1024) == bytes([byte]) * 64 * 1024, \
                    "VDI %s: data at %d not found through chain %s" % (vdi, off, v.chain())
            assert v.read(8 * MIB, 4096) == bytes(4096)  # never written
            chain = v.chain()
        finally:
            v.close()
        if also_qemu:  # a plain dynamic VHD again: qemu's own reader agrees
            for off, byte in PATTERN:
                out = sh(["qemu-io", "-f", "vpc", "-r", "-c", "read -P 0x%x %d 64k" % (byte, off), path]).stdout
                assert "read 65536/65536 bytes" in out and "verification failed" not in out, out
    return chain


def test_realsm_lifecycle(tree_id, lvm, ceph, vm_results_dir, tmp_path):
    name = "%s-lvm-%s" % (tree_id, lvm or "shipped")
    steps = Steps(name, vm_results_dir)
    dom0 = Dom0(tree_id, str(tmp_path / "dom0"), vm_results_dir, name=name)
    if os.path.exists(dom0.smlog):
        os.unlink(dom0.smlog)
    image = "%s-%s" % (IMAGE, name.replace(".", "-"))
    key = ceph.key.reveal()
    try:
        _lifecycle(steps, dom0, lvm, ceph, image, key)
    finally:
        # everything RBDSR installed goes (disable alone keeps its files and state)
        sh([sys.executable, os.path.join(REPO, "uninstall_rbdsr.py"), "--root", "/"], check=False)
        for unit_log in _gc_logs():
            shutil.copy(unit_log, os.path.join(vm_results_dir, "%s-%s" % (name, os.path.basename(unit_log))))
            os.unlink(unit_log)
        dom0.remove()
        unmap_all()


def _gc_logs():
    d = "/run/systemctl-standin"
    return [os.path.join(d, n) for n in os.listdir(d) if n.endswith(".log")] if os.path.isdir(d) else []


def _lifecycle(steps, dom0, lvm, ceph, image, key):
    with steps("stand-in dom0 from the real tree, LVM config %s" % (lvm or "as shipped")):
        dom0.install(lvm)

    with steps("install_rbdsr.py enable, check"):
        p = installer("enable")
        assert p.returncode == 0, p.stdout + p.stderr
        p = installer("check")
        assert p.returncode == 0, p.stdout + p.stderr

    pool = Pool(dom0, {}, secrets=[key], hosts=2)
    vg = "VG_XenStorage-" + pool.sr_uuid
    dconf = {"target": ceph.mon_addr, "port": "6789", "targetIQN": ceph.pool, "SCSIid": image,
             "chapuser": "admin", "chappassword_secret": pool.refs["secrets"][key], "timeout": "60"}
    pool.set_dconf(dconf)
    wizard = {"target": ceph.mon_addr, "port": "6789", "chapuser": "admin", "chappassword": key}

    with steps("wizard 1: monitors + credentials -> pools"):
        r = pool.probe(wizard)
        assert r.fault_code == 96, r  # ConfigTargetIQNMissing, with the pools as IQNs
        iqns = [n.firstChild.data for n in xml.dom.minidom.parseString(r.stderr.strip()).getElementsByTagName("TargetIQN")]
        assert ceph.pool in iqns

    with steps("wizard 2: + pool -> images as LUNs"):
        if "realsm-other" not in _images(ceph):
            ceph.create("realsm-other", 64 * MIB)
        r = pool.probe(dict(wizard, targetIQN=ceph.pool))
        assert r.fault_code == 107, r  # ConfigSCSIid, with the images as LUNs
        luns = [n.firstChild.data for n in xml.dom.minidom.parseString(r.stderr.strip()).getElementsByTagName("SCSIid")]
        assert "realsm-other" in luns

    with steps("wizard 3: + image -> no SR on it yet"):
        r = pool.probe(dict(wizard, targetIQN=ceph.pool, SCSIid=image))
        assert r.ok, r
        assert not xml.dom.minidom.parseString(r.value).getElementsByTagName("UUID")

    with steps("sr_create"):
        pool.call("sr_create", args=[str(SR_SIZE)])

    with steps("sr_attach on the master"):
        pool.call("sr_attach")
        pool.plug(0, True)
        assert "MGT" in lvs(vg)
        assert int(pool.sr()["physical_size"]) > SR_SIZE // 2

    with steps("sr_attach on a second host (same kernel)"):
        pool.call("sr_attach", host=1)
        pool.plug(1, True)

    with steps("vdi_create (VHD)"):
        vdi = pool.vdi_create(VDI_SIZE)
        rec = pool.vdi(vdi)
        assert rec["sm_config"].get("vdi_type") == "vhd", rec
        assert int(rec["virtual_size"]) == VDI_SIZE

    with steps("write data into the VDI (vhd-util fill, then in place)"):
        path = "/dev/%s/VHD-%s" % (vg, vdi)
        with ActiveLVs(vg, ["VHD-" + vdi]):
            # -b: allocate every block of the virtual size, bitmaps all present (without -b,
            # fill walks the whole max BAT, past the virtual size, and ends in ERANGE)
            sh(["vhd-util", "fill", "-n", path, "-b", "-f", "0", "-t", str(VDI_SIZE // 512 - 1)])
            v = VHD(path)
            for off, byte in PATTERN:
                v.write(off, bytes([byte]) * MIB)
        expect_pattern(vg, vdi, also_qemu=True)
        vhd_check_all(vg)

    with steps("vdi_attach / vdi_detach"):
        att = pool.vdi_attach(vdi)
        # sm 3.x answers the backend link in params; sm master (4.x) only params_nbd
        if "params" in att:
            assert att["params"] == "/dev/sm/backend/%s/%s" % (pool.sr_uuid, vdi), att
        else:
            assert att["params_nbd"].endswith("/%s/%s:exportname=%s" % (pool.sr_uuid, vdi, vdi)), att
        pool.call("vdi_detach", vdi=vdi)

    with steps("vdi_snapshot"):
        snap = pool.vdi_snapshot(vdi)
        tree = vhd_tree(vg)
        base = tree[vdi][0]
        assert base and tree[snap][0] == base and tree[base][1], tree  # both leaves of a hidden base
        expect_pattern(vg, vdi)
        expect_pattern(vg, snap)
        vhd_check_all(vg)

    with steps("vdi_clone"):
        clone = pool.vdi_snapshot(vdi, clone=True)
        expect_pattern(vg, clone)
        assert not pool.vdi(clone)["is_a_snapshot"]
        vhd_check_all(vg)

    with steps("vdi_resize (the clone, 64 -> 96 MiB)"):
        pool.call("vdi_resize", vdi=clone, args=[str(96 * MIB)])
        assert int(pool.vdi(clone)["virtual_size"]) == 96 * MIB
        vhd_check_all(vg)

    with steps("vdi_delete (snapshot and clone)"):
        starts = int(pool.gc_state().get("Starts") or 0)
        pool.call("vdi_delete", vdi=snap)
        pool.call("vdi_delete", vdi=clone)
        assert pool.vdi(snap) is None and pool.vdi(clone) is None

    with steps("sr_scan: sm's GC runs to its end, leaf coalesce"):
        pool.call("sr_scan")
        st = pool.wait_gc(starts, GC_TIMEOUT)
        assert st["Result"] == "success" and st["ExecMainStatus"] == "0", st
        # the GC may have been kicked again by the scan: let every run end
        _gc_settle(pool, vg, vdi)
        tree = vhd_tree(vg)
        assert tree.get(vdi, ("?",))[0] is None, "VDI %s still has a parent after the GC: %s" % (vdi, tree)
        assert [u for u in tree if u != vdi] == [], tree
        expect_pattern(vg, vdi, also_qemu=True)
        vhd_check_all(vg)

    with steps("grow the image -> sr_scan and sr_update grow the SR"):
        before = int(pool.sr()["physical_size"])
        ceph.resize(image, 2 * SR_SIZE)
        pool.call("sr_scan")
        pool.call("sr_update")
        after = int(pool.sr()["physical_size"])
        assert after > before + SR_SIZE // 2, (before, after)

    with steps("HA: vdi_generate_config -> vdi_attach_from_config (no session)"):
        r = pool.call("vdi_generate_config", vdi=vdi)
        (config,), method = xmlrpc.client.loads(r.value)
        assert method == "vdi_attach_from_config"
        assert "session_ref" not in config and "sr_ref" not in config
        r = dom0.run(xmlrpc.client.dumps((config,), "vdi_attach_from_config"))
        assert r.ok, r
        assert key not in r.smlog
        expect_pattern(vg, vdi)
        pool.call("vdi_detach", vdi=vdi)

    with steps("vdi_delete + GC"):
        starts = int(pool.gc_state().get("Starts") or 0)
        pool.call("vdi_delete", vdi=vdi)
        pool.call("sr_scan")
        st = pool.wait_gc(starts, GC_TIMEOUT)
        assert st["Result"] == "success", st
        assert not [n for n in lvs(vg) if n.startswith("VHD-")]

    with steps("sr_detach on the second host, then the master"):
        pool.call("sr_detach", host=1)
        pool.plug(1, False)
        pool.call("sr_detach")
        pool.plug(0, False)

    with steps("sr_delete"):
        pool.call("sr_delete")
        assert image in _images(ceph)  # kept, blank (delete_image not set)
        assert ceph.read(image, 0, MIB) == bytes(MIB)

    with steps("disable: the sm tree byte-identical"):
        p = installer("disable")
        assert p.returncode == 0, p.stdout + p.stderr
        after = realdom0.tree_sums([realdom0.SM_DIR, os.path.join(realdom0.SITE, "sm")])
        changed = sorted(k for k in set(after) | set(dom0.sm_sums) if after.get(k) != dom0.sm_sums.get(k))
        assert not changed, changed
        ceph.remove(image)


def _gc_settle(pool, vg, vdi, timeout=GC_TIMEOUT):
    """sm kicks its GC on every scan and delete; wait until no run is active and no more
    work shows in the VHD tree (the GC loops until it finds none, then exits)."""
    deadline = time.monotonic() + timeout
    while pool.gc_state()["ActiveState"] == "activating":
        assert time.monotonic() < deadline, "GC still running"
        time.sleep(1)


def _images(ceph):
    import rbd
    return rbd.RBD().list(ceph.ioctx())


def pytest_generate_tests(metafunc):
    if "tree_id" in metafunc.fixturenames:
        metafunc.parametrize(("tree_id", "lvm"), _lifecycle_params())
