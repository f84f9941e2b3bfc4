"""dom0's shipped /etc/lvm in the guest, real udev, real krbd, real LVM.

As shipped (CA-410086: scan = [ "/dev/disk/by-id" ], no "rbd" type) LVM does not see an
RBD PV: the failure issue 11 reported ("VG not found" after enable said ok). With what
the installer puts in place (its udev rule in the guest's /etc/udev/rules.d, lvmlocal.conf
planned and validated by rbdsr.installer.lvmconf for both config dirs) pvcreate, vgcreate,
vgs and lvcreate see it with LVM_SYSTEM_DIR=<etc/lvm> and =<etc/lvm/master>, and what
`check` computes agrees. A loop-backed VG keeps working under the same configuration.

The shipped files come from ../shared/lvm, which the guest cannot see: the host copies
them in ../shared/lvm, which the VM lab shares with the guest; tests/shippedlvm.py finds them.
"""
import os
import re
import shutil
import time

import pytest

from krbd_helpers import MIB
from lvm_helpers import lvmconf as lvmtext
from rbdsr import krbd, proc, sysfs
from rbdsr.installer import lvmconf, udevrule
from rbdsr.installer.context import decode, encode
from tests import shippedlvm

TIMEOUT = 60
GUEST_RULE = os.path.join("/", udevrule.RULE)
DIRS = ("etc/lvm", "etc/lvm/master")


def lvm(sysdir, argv, check=True):
    env = dict(os.environ, LVM_SYSTEM_DIR=sysdir, LVM_SUPPRESS_FD_WARNINGS="1")
    r = proc.run(argv, TIMEOUT, env=env)
    if check:
        assert r.rc == 0, "%s with LVM_SYSTEM_DIR=%s: rc %d: %s" % (" ".join(argv), sysdir, r.rc, r.err)
    return r


def vg_seen(sysdir, vg):
    r = lvm(sysdir, ["vgs", "--noheadings", "-o", "vg_name", vg], check=False)
    return r.rc == 0 and r.out.strip() == vg


def shipped_root(tmp_path, variant):
    if shippedlvm.variant_dir(variant) is None:
        if os.environ.get("CI"):
            pytest.fail("no shipped /etc/lvm: CI always has ../shared beside its clone")
        pytest.skip("no shipped /etc/lvm: no ../shared/lvm beside the repository")
    root = tmp_path / variant
    shippedlvm.lay(str(root / "etc/lvm"), variant)
    return str(root)


def apply_fix(root):
    """What install_rbdsr.py enable does for LVM, through the installer's own functions:
    lvmlocal.conf planned and validated by LVM per dir; the udev rule into the guest."""
    for d in DIRS:
        rel = lvmconf.local_rel(d)
        path = os.path.join(root, rel)
        orig = open(path, "rb").read() if os.path.exists(path) else None
        new = lvmconf.plan_local(os.path.join(root, d), d, orig, {}, decode, encode)
        with open(path, "wb") as f:
            f.write(new)
    with open(GUEST_RULE, "w") as f:
        f.write(udevrule.TEXT)
    assert udevrule.reload_now() is None


@pytest.fixture
def rule_cleanup():
    yield
    if os.path.exists(GUEST_RULE):
        os.unlink(GUEST_RULE)
    udevrule.reload_now()


@pytest.fixture
def lab(tmp_path, dm_ready):
    """An LVM that sees every /dev node: the guest's own config plus the rbd type
    (for making and cleaning up VGs independently of what is under test)."""
    sysdir = str(tmp_path / "lab-lvm")
    shutil.copytree("/etc/lvm", sysdir, symlinks=True)
    conf = os.path.join(sysdir, "lvm.conf")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(lvmtext.add_rbd_types(text))
    return sysdir


@pytest.fixture
def images(ceph, lab):
    made = []

    def make(name, size=64 * MIB):
        ceph.create(name, size)
        iid = ceph.image_id(name)
        dev = krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=TIMEOUT)
        made.append((name, iid, dev))
        return dev

    yield make
    for name, iid, dev in made:
        for vg in lvm(lab, ["pvs", "--noheadings", "-o", "vg_name", dev.dev_path], check=False).out.split():
            lvm(lab, ["vgremove", "-ff", "-y", vg], check=False)
        lvm(lab, ["pvremove", "-ff", "-y", dev.dev_path], check=False)
        krbd.unmap(iid, force=True, timeout=TIMEOUT)
        ceph.remove(name)


def by_id_link(dev):
    """The name the rule gives this mapping, from its sysfs attributes."""
    top = os.path.join(sysfs.devices_dir(), str(dev.dev_id))
    attrs = [sysfs.read_attr(os.path.join(top, a)) for a in ("cluster_fsid", "pool_id", "image_id")]
    return udevrule.by_id_name(*attrs)


def wait_link(path, present=True, timeout=TIMEOUT):
    proc.run(["udevadm", "settle", "--timeout=%d" % timeout], timeout + 5)
    deadline = time.monotonic() + timeout
    while os.path.lexists(path) != present:
        assert time.monotonic() < deadline, "%s still %s" % (path, "missing" if present else "there")
        time.sleep(0.2)


def sr_create_steps(sysdir, vg, path):
    """sm's sr_create LVM steps; the first that fails, or None when the VG is then found."""
    for argv in (["pvcreate", "-y", path], ["vgcreate", "-y", vg, path]):
        r = lvm(sysdir, argv, check=False)
        if r.rc != 0:
            return "%s: %s" % (argv[0], " / ".join(r.err.strip().splitlines()[-2:]))
    return None if vg_seen(sysdir, vg) else "vgs %s: not found" % vg


def test_shipped_lvm_does_not_see_an_rbd_pv(tmp_path, lab, images):
    """The reported failure: dom0's LVM as shipped (CA-410086) and the device's names as
    they were without this fix (no udev by-id name; the driver's link outside
    /dev/disk/by-id, at /dev/rbdsr/...): sm's sr_create fails, a VG on the device is
    not found. (The guest's lvm2 2.03 knows the rbd type by itself, dom0's 2.02.180
    does not: that half of the failure is lvmconfig's to show, in the unit tier.)"""
    root = shipped_root(tmp_path, "ca-410086")
    dev = images("lvm-dom0-asis")
    assert not os.path.exists(GUEST_RULE)
    assert not os.path.lexists(by_id_link(dev))
    old_path = "/dev/rbdsr/%s" % os.path.relpath(dev.stable_path, krbd.STABLE_ROOT)
    os.makedirs(os.path.dirname(old_path))
    os.rename(dev.stable_path, old_path)
    # earlier VM tests unmap with raw sysfs writes, which can leave their stable links behind
    # pointing at a /dev/rbdN that is this device now: not a name the old code gave it
    for top, _dirs, names in os.walk("/dev/disk/by-id"):
        for n in names:
            link = os.path.join(top, n)
            if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(dev.dev_path):
                os.unlink(link)
    try:
        for d in DIRS:
            sysdir = os.path.join(root, d)
            ok, problems = lvmconf.check_dir(sysdir, d, with_rule=False)
            assert ok is None and "devices/types" in problems[0], problems
            why = sr_create_steps(sysdir, "rbdsr_asis", old_path)
            assert why is not None and "No device found" in why, why
            print("LVM_SYSTEM_DIR=%s (shipped), old path: %s" % (d, why))
        # a VG made on the device by an LVM that sees it is not found by dom0's LVM
        lvm(lab, ["pvcreate", "-y", old_path])
        lvm(lab, ["vgcreate", "-y", "rbdsr_asis", old_path])
        assert vg_seen(lab, "rbdsr_asis")
        for d in DIRS:
            sysdir = os.path.join(root, d)
            assert not vg_seen(sysdir, "rbdsr_asis")
            assert "rbdsr_asis" not in lvm(sysdir, ["pvs", "--noheadings", "-o", "pv_name,vg_name"],
                                           check=False).out
    finally:
        os.rename(old_path, dev.stable_path)
        shutil.rmtree("/dev/rbdsr", ignore_errors=True)


def test_installed_fix_lets_lvm_see_rbd_pvs_with_both_config_dirs(tmp_path, images, rule_cleanup):
    root = shipped_root(tmp_path, "ca-410086")
    apply_fix(root)
    for d in DIRS:
        ok, problems = lvmconf.check_dir(os.path.join(root, d), d)
        assert ok and not problems, problems
    etc, master = (os.path.join(root, d) for d in DIRS)
    for sysdir, other, name in ((etc, master, "lvm-dom0-etc"), (master, etc, "lvm-dom0-master")):
        dev = images(name)
        link = by_id_link(dev)
        wait_link(link)
        assert os.path.realpath(link) == dev.dev_path
        vg = "rbdsr_" + name.replace("-", "_")
        # sm's sr_create: pvcreate + vgcreate on the driver's path, then vgs by name
        assert sr_create_steps(sysdir, vg, dev.stable_path) is None
        for s in (sysdir, other):
            assert vg_seen(s, vg), "VG %s not found with LVM_SYSTEM_DIR=%s" % (vg, s)
            pvs = lvm(s, ["pvs", "--noheadings", "-o", "pv_name,vg_name"]).out
            assert re.search(r"\S+\s+%s\b" % vg, pvs), pvs
        lvm(other, ["lvcreate", "-y", "-L", "8M", "-n", "lv0", vg])
        assert "lv0" in lvm(sysdir, ["lvs", "--noheadings", "-o", "lv_name", vg]).out
        lvm(sysdir, ["vgchange", "-an", vg])
        # udev's by-id name alone is enough too (the driver's link moved away)
        away = dev.stable_path + ".away"
        os.rename(dev.stable_path, away)
        try:
            for s in (sysdir, other):
                assert vg_seen(s, vg), "VG %s not found through %s alone" % (vg, link)
        finally:
            os.rename(away, dev.stable_path)


def test_a_path_outside_devices_scan_is_not_found(tmp_path, images, rule_cleanup):
    """Why the driver's link lives under /dev/disk/by-id: lvm2 finds a path given on
    the command line only among the names it scanned."""
    root = shipped_root(tmp_path, "ca-410086")
    apply_fix(root)
    dev = images("lvm-dom0-outside")
    outside = str(tmp_path / "rbd-link")
    os.symlink(dev.dev_path, outside)
    r = lvm(os.path.join(root, "etc/lvm"), ["pvcreate", "-y", outside], check=False)
    assert r.rc != 0 and "No device found" in r.err, r.err
    lvm(os.path.join(root, "etc/lvm"), ["pvcreate", "-y", dev.stable_path])


def test_a_mapped_snapshot_gets_no_by_id_name(tmp_path, ceph, images, rule_cleanup):
    """Its PV label equals the head's: LVM must not meet it as a duplicate PV."""
    import rbd

    root = shipped_root(tmp_path, "ca-410086")
    apply_fix(root)
    head = images("lvm-dom0-snap")
    wait_link(by_id_link(head))
    with rbd.Image(ceph.ioctx(), "lvm-dom0-snap") as img:
        img.create_snap("s1")
    sid = ceph.image_id("lvm-dom0-snap", snap="s1")
    snap = krbd.map_image(sid, [ceph.mon_addr], ceph.creds, read_only=True, timeout=TIMEOUT)
    try:
        proc.run(["udevadm", "settle", "--timeout=30"], 35)
        links = [os.path.realpath(os.path.join(udevrule.BY_ID, n)) for n in os.listdir(udevrule.BY_ID)]
        assert snap.dev_path not in links and head.dev_path in links
    finally:
        krbd.unmap(sid, force=True, timeout=TIMEOUT)
        with rbd.Image(ceph.ioctx(), "lvm-dom0-snap") as img:
            img.remove_snap("s1")


def test_loop_backed_vg_still_works_with_the_fix(tmp_path, images, rule_cleanup):
    """Before CA-410086 (scan = [ "/dev" ]) a loop-backed VG is seen; it still is with
    the fix, next to an RBD one. (With CA-410086, loop devices have no by-id name, so
    dom0's LVM does not scan them with or without RBDSR.)"""
    root = shipped_root(tmp_path, "pre-ca-410086")
    etc = os.path.join(root, "etc/lvm")
    backing = str(tmp_path / "loop.img")
    with open(backing, "wb") as f:
        f.truncate(64 * MIB)
    loopdev = proc.run(["losetup", "--find", "--show", backing], TIMEOUT).out.strip()
    assert loopdev.startswith("/dev/loop"), loopdev
    try:
        lvm(etc, ["pvcreate", "-y", loopdev])
        lvm(etc, ["vgcreate", "-y", "rbdsr_loop", loopdev])
        before = {d: lvm(os.path.join(root, d), ["vgs", "--noheadings", "-o", "vg_name,pv_count,vg_size",
                                                 "rbdsr_loop"]).out for d in DIRS}
        apply_fix(root)
        dev = images("lvm-dom0-loop")
        lvm(etc, ["pvcreate", "-y", dev.stable_path])
        lvm(etc, ["vgcreate", "-y", "rbdsr_loop_rbd", dev.stable_path])
        for d in DIRS:
            sysdir = os.path.join(root, d)
            assert lvm(sysdir, ["vgs", "--noheadings", "-o", "vg_name,pv_count,vg_size", "rbdsr_loop"]).out \
                == before[d]
            lvm(sysdir, ["lvcreate", "-y", "-L", "8M", "-n", "lv_" + d.replace("/", "_"), "rbdsr_loop"])
            assert vg_seen(sysdir, "rbdsr_loop_rbd")
        lvm(etc, ["vgchange", "-an", "rbdsr_loop"])
    finally:
        lvm(etc, ["vgremove", "-ff", "-y", "rbdsr_loop"], check=False)
        proc.run(["losetup", "-d", loopdev], TIMEOUT)
