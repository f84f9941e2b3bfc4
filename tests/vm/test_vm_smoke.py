"""Proves the VM lab: the real kernel has krbd and device-mapper, a Ceph dev cluster runs
in the guest, an image maps through sysfs, LVM works on /dev/rbdN and data written
through an LV lands in the RBD image at the LV's offset.

This is a lab check, not a test of RBDSR code (rbdsr/krbd.py and lvm_helpers have their
own VM tests): it uses the kernel and LVM interfaces directly.
"""
import os
import re
import sys
import time

import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "vmlab-smoke"
VG = "vmlab_smoke_vg"
LV = "lv0"
MIB = 1 << 20
WAIT = 30


def run(argv, timeout=60, check=True):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (rc %d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p


def _info(cluster):
    """The `ceph-dev-cluster start --json` description: the cephlab state dict itself,
    or the `.info` of tests/cephfixture.CephCluster."""
    return cluster if isinstance(cluster, dict) else cluster.info


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    """The shared `ceph_cluster` fixture (tests/cephfixture.py) when loaded, else a
    cluster of our own started with tools/cephlab."""
    try:
        return request.getfixturevalue("ceph_cluster")
    except pytest.FixtureLookupError:
        pass
    sys.path.insert(0, os.path.join(REPO, "tools"))
    from cephlab import cluster as cephlab
    d = str(tmp_path_factory.mktemp("ceph") / "c")
    state = cephlab.start(d, timeout=300)
    request.addfinalizer(lambda: cephlab.stop(d))
    return state


def _admin_key(keyring_path):
    with open(keyring_path) as f:
        m = re.search(r"^\s*key\s*=\s*(\S+)\s*$", f.read(), re.M)
    assert m, "no key in %s" % keyring_path
    return m.group(1)


def _wait_for(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(0.2)


def _mapped_ids(pool, image):
    base = "/sys/bus/rbd/devices"
    out = []
    for dev_id in os.listdir(base):
        with open(os.path.join(base, dev_id, "pool")) as f:
            p = f.read().strip()
        with open(os.path.join(base, dev_id, "name")) as f:
            n = f.read().strip()
        if (p, n) == (pool, image):
            out.append(dev_id)
    return out


def _sysfs_map(mon_addr, keyring, pool, image):
    # The key goes from the keyring file straight into the sysfs write (no argv, no log).
    with open("/sys/bus/rbd/add_single_major", "w") as f:
        f.write("%s name=admin,secret=%s %s %s -" % (mon_addr, _admin_key(keyring), pool, image))


def test_kernel_has_rbd_and_dm(krbd_ready, dm_ready):
    assert os.environ.get("RBDSR_IN_VM") == "1"
    assert os.uname().release.startswith("6.1."), os.uname().release
    with open("/proc/modules") as f:
        loaded = {line.split()[0] for line in f}
    assert {"rbd", "libceph", "dm_mod"} <= loaded, sorted(loaded)
    assert os.path.exists("/sys/bus/rbd/remove_single_major")


def test_rbd_map_lvm_roundtrip(cluster, krbd_ready, dm_ready):
    import rados
    import rbd

    info = _info(cluster)
    pool, conf, keyring, mon_addr = info["pool"], info["conf"], info["admin_keyring"], info["mon_addr"]

    cl = rados.Rados(conffile=conf, conf={"keyring": keyring}, rados_id="admin")
    cl.connect(timeout=30)
    ioctx = cl.open_ioctx(pool)
    dev_id = None
    try:
        rbd.RBD().create(ioctx, IMAGE, 256 * MIB, old_format=False,
                         features=rbd.RBD_FEATURE_LAYERING)

        _sysfs_map(mon_addr, keyring, pool, IMAGE)
        ids = _mapped_ids(pool, IMAGE)
        assert len(ids) == 1, ids
        dev_id = ids[0]
        dev = "/dev/rbd%s" % dev_id
        _wait_for(lambda: os.path.exists(dev), dev)
        with open("/sys/block/rbd%s/size" % dev_id) as f:
            assert int(f.read()) * 512 == 256 * MIB

        run(["pvcreate", "-y", dev])
        run(["vgcreate", "-y", VG, dev])
        run(["lvcreate", "-y", "-n", LV, "-L", "64m", VG])
        lv_path = "/dev/%s/%s" % (VG, LV)
        _wait_for(lambda: os.path.exists(lv_path), lv_path)

        pe_start = int(run(["pvs", "--noheadings", "--units", "b", "--nosuffix",
                            "-o", "pe_start", dev]).stdout.strip())
        extent = int(run(["vgs", "--noheadings", "--units", "b", "--nosuffix",
                          "-o", "vg_extent_size", VG]).stdout.strip())
        ranges = run(["lvs", "--noheadings", "-o", "seg_pe_ranges", "%s/%s" % (VG, LV)]).stdout.strip()
        m = re.match(r"^%s:(\d+)-(\d+)$" % re.escape(dev), ranges)
        assert m, "unexpected segment layout %r" % ranges
        lv_offset = pe_start + int(m.group(1)) * extent

        pattern = (b"vmlab-smoke-" + os.urandom(20).hex().encode() + b"\n") * 4096
        pattern = pattern[:MIB]
        at = 3 * MIB  # inside the LV
        fd = os.open(lv_path, os.O_WRONLY)
        try:
            os.pwrite(fd, pattern, at)
            os.fsync(fd)
        finally:
            os.close(fd)

        with rbd.Image(ioctx, IMAGE, read_only=True) as img:
            got = img.read(lv_offset + at, len(pattern))
        assert got == pattern, "data written through the LV not found at image offset %d" % (lv_offset + at)

        run(["lvchange", "-an", "%s/%s" % (VG, LV)])
        _wait_for(lambda: not os.path.exists(lv_path), "%s to go away" % lv_path)
        run(["vgchange", "-an", VG])
        assert not [n for n in os.listdir("/dev/mapper") if n.startswith(VG + "-")]

        with open("/sys/bus/rbd/remove_single_major", "w") as f:
            f.write(dev_id)
        dev_id = None
        assert _mapped_ids(pool, IMAGE) == []
        _wait_for(lambda: not os.path.exists(dev), "%s to go away" % dev)
    finally:
        if dev_id is not None:  # best-effort cleanup after a failure
            run(["vgchange", "-an", VG], check=False)
            try:
                with open("/sys/bus/rbd/remove_single_major", "w") as f:
                    f.write("%s force" % dev_id)
            except OSError:
                pass
        try:
            rbd.RBD().remove(ioctx, IMAGE)
        except rbd.ImageNotFound:
            pass
        ioctx.close()
        cl.shutdown()
