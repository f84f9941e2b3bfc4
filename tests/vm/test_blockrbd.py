"""scripts/block-rbd add/remove against the real kernel RBD client and a real
Ceph cluster in the VM lab.

xenstore is the file-backed stand-in of tests/fakexenstore, put first on PATH:
a real xenstored needs a Xen hypervisor, which the VM lab does not have.
Everything else is real: the script as libxl runs it (XENBUS_PATH, add/remove),
the sysfs map/unmap, /dev/rbdN, the claims on Ceph.
"""
import fcntl
import os
import struct
import subprocess
import sys

import pytest
import rbd

from rbdsr import krbd, sysfs
from tests import fakexenstore
from tests.dom0files import ROOT

from krbd_helpers import MIB, Ceph, pattern, pread_direct, pwrite_direct, start_cluster, unmap_all

SCRIPT = os.path.join(ROOT, "scripts", "block-rbd")
VBD1 = "/local/domain/0/backend/vbd/3/51712"
VBD2 = "/local/domain/0/backend/vbd/4/51712"
BLKROGET = 0x125E  # linux/fs.h _IO(0x12, 94)


def _attr(cluster, *names):
    for n in names:
        v = cluster.get(n) if isinstance(cluster, dict) else getattr(cluster, n, None)
        if v:
            return v
    raise AssertionError("cluster description has none of %s" % (names,))


@pytest.fixture(scope="module")
def ceph(request, tmp_path_factory, krbd_ready):
    cluster = start_cluster(request, tmp_path_factory)
    c = Ceph(cluster)
    c.conf_path = _attr(cluster, "conf_path", "conf")
    yield c
    unmap_all()
    c.close()


@pytest.fixture
def images(ceph):
    made = []

    def make(name, size=64 * MIB):
        ceph.create(name, size)
        made.append(name)
        return name

    yield make
    unmap_all()
    for name in made:
        with rbd.Image(ceph.ioctx(), name) as img:
            for client, cookie, _addr in (img.list_lockers() or {}).get("lockers", []):
                img.break_lock(client, cookie)
            for s in list(img.list_snaps()):
                if img.is_protected_snap(s["name"]):
                    img.unprotect_snap(s["name"])
                img.remove_snap(s["name"])
        ceph.remove(name)


class Dom0(object):
    def __init__(self, tmp_path, ceph):
        self.ceph = ceph
        self.db = str(tmp_path / "xs.json")
        self.env = fakexenstore.install(str(tmp_path / "bin"), self.db)
        self.env["BLOCK_RBD_HOST_ID"] = "vm-host"
        self.env["BLOCK_RBD_LOCK"] = str(tmp_path / "lock")

    def target(self, spec, extra=""):
        # no keyring=: found through the cluster conf's "keyring = .../$cluster.$name.keyring"
        return "rbd:%s:%s,conf=%s%s" % (self.ceph.pool, spec, self.ceph.conf_path, extra)

    def vbd(self, vbd, params, mode):
        subprocess.check_call(["xenstore-write", vbd + "/params", params, vbd + "/mode", mode], env=self.env)

    def hotplug(self, command, vbd):
        env = dict(self.env, XENBUS_PATH=vbd, XENBUS_TYPE="vbd")
        p = subprocess.run([sys.executable, SCRIPT, command], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=240)
        assert self.ceph.key.reveal() not in p.stdout + p.stderr
        return p

    def forget(self, vbd):
        subprocess.check_call(["xenstore-rm", vbd], env=self.env)

    def node(self, vbd, name):
        return fakexenstore.load(self.db).get(vbd + "/" + name)


@pytest.fixture
def dom0(tmp_path, ceph):
    return Dom0(tmp_path, ceph)


def blkroget(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, BLKROGET, b"\0" * 4))[0]
    finally:
        os.close(fd)


def lockers(ceph, name):
    with rbd.Image(ceph.ioctx(), name, read_only=True) as img:
        info = img.list_lockers()
    return info or {"lockers": [], "exclusive": None, "tag": None}


def mapped_device(ceph, name, snap="-"):
    return krbd.find_mapped(ceph.image_id(name, snap=snap))


def check_connected(dom0, vbd, ceph, name, snap="-"):
    """The xenstore nodes Xen's blkback reads match the kernel's device."""
    dev_id = mapped_device(ceph, name, snap)
    assert dev_id is not None
    path = dom0.node(vbd, "physical-device-path")
    assert path == "/dev/rbd%d" % dev_id
    st = os.stat(path)
    assert dom0.node(vbd, "physical-device") == "%x:%x" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == sysfs.block_devnum(dev_id)
    assert dom0.node(vbd, "hotplug-status") == "connected"
    assert dom0.node(vbd, "hotplug-error") is None
    assert dom0.node(vbd, "rbd-fsid") == ceph.fsid
    return dev_id, path


def test_add_write_maps_claims_and_remove_undoes_it(dom0, ceph, images):
    name = images("bv-rw")
    dom0.vbd(VBD1, dom0.target(name), "w")
    p = dom0.hotplug("add", VBD1)
    assert p.returncode == 0, p.stderr
    dev_id, path = check_connected(dom0, VBD1, ceph, name)
    assert not sysfs.is_read_only(dev_id) and blkroget(path) == 0
    cookie = "block-rbd host=vm-host vbd=%s" % VBD1
    assert dom0.node(VBD1, "rbd-claim") == cookie
    held = lockers(ceph, name)
    assert held["exclusive"] is True and [lk[1] for lk in held["lockers"]] == [cookie]
    # the device is that image: a write through it is what librbd reads back
    data = pattern("blockrbd", 64 * 1024)
    pwrite_direct(path, 4 * MIB, data)
    assert ceph.read(name, 4 * MIB, len(data)) == data
    # a second add of the same vbd (libxl retry) is idempotent
    p = dom0.hotplug("add", VBD1)
    assert p.returncode == 0, p.stderr
    assert mapped_device(ceph, name) == dev_id and len(lockers(ceph, name)["lockers"]) == 1

    p = dom0.hotplug("remove", VBD1)
    assert p.returncode == 0, p.stderr
    assert mapped_device(ceph, name) is None
    assert not os.path.isdir("/sys/bus/rbd/devices/%d" % dev_id)
    assert lockers(ceph, name)["lockers"] == []
    # remove again: nothing to do, still success
    assert dom0.hotplug("remove", VBD1).returncode == 0


def test_add_read_only_mode(dom0, ceph, images):
    name = images("bv-ro")
    ceph.write(name, 0, b"R" * 4096)
    dom0.vbd(VBD1, dom0.target(name), "r")
    p = dom0.hotplug("add", VBD1)
    assert p.returncode == 0, p.stderr
    dev_id, path = check_connected(dom0, VBD1, ceph, name)
    assert sysfs.is_read_only(dev_id)
    assert pread_direct(path, 0, 4096) == b"R" * 4096
    assert blkroget(path) == 1   # the flag blkback sees when it opens the device
    held = lockers(ceph, name)
    assert held["exclusive"] is False and held["tag"] == "block-rbd"
    assert dom0.hotplug("remove", VBD1).returncode == 0
    assert mapped_device(ceph, name) is None and lockers(ceph, name)["lockers"] == []


def test_add_snapshot_is_read_only_without_claim(dom0, ceph, images):
    name = images("bv-snap")
    ceph.write(name, 0, b"S" * 4096)
    with rbd.Image(ceph.ioctx(), name) as img:
        img.create_snap("s1")
    ceph.write(name, 0, b"T" * 4096)  # the head moves on; the snapshot does not
    dom0.vbd(VBD1, dom0.target(name + "@s1"), "r")
    p = dom0.hotplug("add", VBD1)
    assert p.returncode == 0, p.stderr
    dev_id, path = check_connected(dom0, VBD1, ceph, name, snap="s1")
    assert sysfs.is_read_only(dev_id) and blkroget(path) == 1
    assert pread_direct(path, 0, 4096) == b"S" * 4096
    assert dom0.node(VBD1, "rbd-claim") is None and lockers(ceph, name)["lockers"] == []
    assert dom0.hotplug("remove", VBD1).returncode == 0
    assert mapped_device(ceph, name, "s1") is None


def test_two_readers_on_one_host_share_the_device(dom0, ceph, images):
    name = images("bv-share")
    dom0.vbd(VBD1, dom0.target(name), "r")
    dom0.vbd(VBD2, dom0.target(name), "r")
    assert dom0.hotplug("add", VBD1).returncode == 0
    assert dom0.hotplug("add", VBD2).returncode == 0
    assert dom0.node(VBD1, "physical-device") == dom0.node(VBD2, "physical-device")
    assert len(lockers(ceph, name)["lockers"]) == 2
    p = dom0.hotplug("remove", VBD1)
    assert p.returncode == 0, p.stderr
    assert "stays mapped, still used by %s" % VBD2 in p.stderr
    assert mapped_device(ceph, name) is not None
    assert len(lockers(ceph, name)["lockers"]) == 1
    dom0.forget(VBD1)   # libxl removes the backend directory after the remove script
    assert dom0.hotplug("remove", VBD2).returncode == 0
    assert mapped_device(ceph, name) is None and lockers(ceph, name)["lockers"] == []


def test_remove_of_a_busy_device_reports_and_keeps_the_claim(dom0, ceph, images):
    name = images("bv-busy")
    dom0.vbd(VBD1, dom0.target(name), "w")
    assert dom0.hotplug("add", VBD1).returncode == 0
    path = dom0.node(VBD1, "physical-device-path")
    fd = os.open(path, os.O_RDONLY | os.O_EXCL)   # like a mounted filesystem
    try:
        p = dom0.hotplug("remove", VBD1)
        assert p.returncode == 1
        err = dom0.node(VBD1, "hotplug-error")
        assert err.startswith("remove failed: cannot unmap") and "open exclusively" in err
        assert dom0.node(VBD1, "hotplug-status") == "error"
        assert mapped_device(ceph, name) is not None
        assert len(lockers(ceph, name)["lockers"]) == 1   # still ours while still mapped
    finally:
        os.close(fd)
    assert dom0.hotplug("remove", VBD1).returncode == 0
    assert mapped_device(ceph, name) is None and lockers(ceph, name)["lockers"] == []


def test_add_missing_image_reports_clearly(dom0, ceph):
    dom0.vbd(VBD1, dom0.target("bv-no-such-image", ",claim=no,timeout=30"), "w")
    p = dom0.hotplug("add", VBD1)
    assert p.returncode == 1
    err = dom0.node(VBD1, "hotplug-error")
    assert "does not exist" in err, err
    assert dom0.node(VBD1, "physical-device") is None


def test_clone_from_golden_snapshot(dom0, ceph, images):
    golden = images("bv-golden")
    ceph.write(golden, 0, b"G" * 4096)
    with rbd.Image(ceph.ioctx(), golden) as img:
        img.create_snap("base")
        img.protect_snap("base")
    child = "bv-child"
    dom0.vbd(VBD1, dom0.target(child, ",clone-from=%s:%s@base" % (ceph.pool, golden)), "w")
    try:
        p = dom0.hotplug("add", VBD1)
        assert p.returncode == 0, p.stderr
        dev_id, path = check_connected(dom0, VBD1, ceph, child)
        assert pread_direct(path, 0, 4096) == b"G" * 4096
        pwrite_direct(path, 0, b"C" * 4096)
        assert ceph.read(golden, 0, 4096) == b"G" * 4096  # copy-on-write: the golden image is untouched
        assert dom0.hotplug("remove", VBD1).returncode == 0
    finally:
        unmap_all()
        ceph.remove(child)


def test_add_image_in_a_namespace(dom0, ceph):
    ns, name = "tenant1", "bv-ns"
    ceph.ensure_namespace(ceph.pool, ns)
    ceph.create(name, 64 * MIB, ceph.pool, ns)
    ceph.create(name, 64 * MIB)   # same name in the default namespace: must not be picked
    try:
        ceph.write(name, 0, b"N" * 4096, None, ns)
        dom0.vbd(VBD1, "rbd:%s/%s:%s,conf=%s" % (ceph.pool, ns, name, ceph.conf_path), "w")
        p = dom0.hotplug("add", VBD1)
        assert p.returncode == 0, p.stderr
        dev_id = krbd.find_mapped(ceph.image_id(name, namespace=ns))
        assert dev_id is not None and krbd.find_mapped(ceph.image_id(name)) is None
        assert dom0.node(VBD1, "physical-device-path") == "/dev/rbd%d" % dev_id
        assert pread_direct("/dev/rbd%d" % dev_id, 0, 4096) == b"N" * 4096
        with rbd.Image(ceph.ioctx(None, ns), name, read_only=True) as img:
            assert [lk[1] for lk in img.list_lockers()["lockers"]] == ["block-rbd host=vm-host vbd=%s" % VBD1]
        assert dom0.hotplug("remove", VBD1).returncode == 0
        assert krbd.find_mapped(ceph.image_id(name, namespace=ns)) is None
        with rbd.Image(ceph.ioctx(None, ns), name, read_only=True) as img:
            assert not img.list_lockers()
    finally:
        unmap_all()
        ceph.remove(name, None, ns)
        ceph.remove(name)
