"""rbdsr.krbd against the real kernel RBD client and a real Ceph cluster in the VM."""
import errno
import os
import stat
import threading
import time

import pytest

from rbdsr import krbd, sysfs
from rbdsr.credentials import Credentials
from rbdsr.errors import AuthError, InUseError, NotFoundError
from rbdsr.secret import Secret, make_cephx_key

from krbd_helpers import MIB, pattern, pread_direct, pwrite_direct, unmap_all

TIMEOUT = 60


@pytest.fixture
def images(ceph):
    made = []

    def make(name, pool=None, namespace="", size=64 * MIB):
        ceph.create(name, size, pool, namespace)
        made.append((name, pool, namespace))
        return ceph.image_id(name, pool, namespace)

    yield make
    unmap_all()
    for name, pool, ns in made:
        ceph.remove(name, pool, ns)


def _map(ceph, image_id, **kw):
    return krbd.map_image(image_id, [ceph.mon_addr], ceph.creds, timeout=TIMEOUT, **kw)


def _sysfs_files(dev_id):
    base = os.path.join("/sys/bus/rbd/devices", str(dev_id))
    out = {}
    for name in sorted(os.listdir(base)):
        p = os.path.join(base, name)
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o444:
            continue
        try:
            with open(p, "rb") as f:
                out[name] = (st.st_mode & 0o777, f.read())
        except OSError:
            continue
    return out


def test_map_with_keyring_and_unmap(ceph, images):
    iid = images("krbd-basic")
    dev = _map(ceph, iid)
    assert dev.dev_path == "/dev/rbd%d" % dev.dev_id
    st = os.stat(dev.dev_path)
    assert stat.S_ISBLK(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == sysfs.block_devnum(dev.dev_id)
    assert dev.stable_path == "/dev/disk/by-id/rbdsr/%s/-/krbd-basic" % ceph.pool
    assert os.path.realpath(dev.stable_path) == dev.dev_path
    info = [i for i in sysfs.list_mapped() if i.dev_id == dev.dev_id][0]
    assert (info.fsid, info.pool, info.namespace, info.image, info.snap) == \
        (ceph.fsid, ceph.pool, "", "krbd-basic", "-")
    files = _sysfs_files(dev.dev_id)
    assert b"key=client.admin" in files["config_info"][1]
    assert b"mount_timeout=" in files["config_info"][1]
    # The keyring path: the key is nowhere in sysfs, and gone from our keyrings.
    for name, (_mode, data) in files.items():
        assert ceph.key.reveal().encode() not in data, name
    from rbdsr import kernel_keyring
    assert kernel_keyring.search("admin") is None
    # Data written through the device reaches the image.
    data = pattern("basic", MIB)
    pwrite_direct(dev.dev_path, 5 * MIB, data)
    assert ceph.read("krbd-basic", 5 * MIB, MIB) == data

    assert krbd.unmap(iid, timeout=TIMEOUT) is True
    assert krbd.find_mapped(iid) is None
    assert not os.path.lexists(dev.stable_path)
    assert krbd.unmap(iid, timeout=TIMEOUT) is False


def test_double_map_is_idempotent(ceph, images):
    iid = images("krbd-twice")
    a = _map(ceph, iid)
    b = _map(ceph, iid)
    assert a == b
    assert [i.dev_id for i in sysfs.list_mapped() if i.image == "krbd-twice"] == [a.dev_id]


def test_vm1_vm10_and_same_name_in_two_pools(ceph, images):
    ceph.ensure_pool("rbd2")
    ceph.ensure_namespace(ceph.pool, "tenant")
    ids = [images("vm10"), images("vm1"), images("vm1", pool="rbd2"), images("vm1", namespace="tenant")]
    devs = [_map(ceph, i) for i in ids]
    assert len(set(d.dev_id for d in devs)) == 4
    assert len(set(d.stable_path for d in devs)) == 4
    for iid, dev in zip(ids, devs):
        assert krbd.find_mapped(iid) == dev.dev_id
    # Each device is the image it claims to be: write through it, read with librbd.
    marks = {}
    for iid, dev in zip(ids, devs):
        marks[iid] = pattern(iid.spec(), 4096)
        pwrite_direct(dev.dev_path, 0, marks[iid])
    for iid in ids:
        assert ceph.read(iid.image, 0, 4096, iid.pool, iid.namespace) == marks[iid]
    # Unmapping vm1 leaves vm10 and the other vm1s alone.
    assert krbd.unmap(ids[1], timeout=TIMEOUT)
    assert krbd.find_mapped(ids[1]) is None
    for i in (0, 2, 3):
        assert krbd.find_mapped(ids[i]) == devs[i].dev_id
        assert os.path.realpath(devs[i].stable_path) == devs[i].dev_path


def test_busy_device_refused_unless_forced(ceph, images):
    iid = images("krbd-busy")
    dev = _map(ceph, iid)
    fd = os.open(dev.dev_path, os.O_RDONLY)
    try:
        with pytest.raises(InUseError) as e:
            krbd.unmap(iid, timeout=TIMEOUT)
        assert "krbd-busy" in str(e.value) and e.value.key == "SRInUse"
        assert krbd.find_mapped(iid) == dev.dev_id
        assert os.path.realpath(dev.stable_path) == dev.dev_path
        assert krbd.unmap(iid, force=True, timeout=TIMEOUT) is True
        assert krbd.find_mapped(iid) is None
    finally:
        os.close(fd)


def test_exclusive_holder_named(ceph, images):
    iid = images("krbd-excl")
    dev = _map(ceph, iid)
    fd = os.open(dev.dev_path, os.O_RDONLY | os.O_EXCL)
    try:
        assert krbd.busy_reason(dev.dev_id) is not None
        with pytest.raises(InUseError):
            krbd.unmap(iid, timeout=TIMEOUT)
    finally:
        os.close(fd)
    assert krbd.busy_reason(dev.dev_id) is None
    assert krbd.unmap(iid, timeout=TIMEOUT)


def test_read_only_map(ceph, images):
    iid = images("krbd-ro")
    ceph.write("krbd-ro", 0, b"r" * 4096)
    dev = _map(ceph, iid, read_only=True)
    assert dev.read_only and sysfs.is_read_only(dev.dev_id)
    assert pread_direct(dev.dev_path, 0, 4096) == b"r" * 4096
    # Depending on the kernel the open or the write is refused.
    with pytest.raises(OSError) as e:
        pwrite_direct(dev.dev_path, 0, b"w" * 4096)
    assert e.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    assert ceph.read("krbd-ro", 0, 4096) == b"r" * 4096


def test_snapshot_map_is_its_own_identity(ceph, images):
    import rbd

    iid = images("krbd-snap")
    ceph.write("krbd-snap", 0, b"1" * 4096)
    with rbd.Image(ceph.ioctx(), "krbd-snap") as img:
        img.create_snap("s1")
    ceph.write("krbd-snap", 0, b"2" * 4096)
    snap_id = ceph.image_id("krbd-snap", snap="s1")
    head = _map(ceph, iid)
    snap = _map(ceph, snap_id, read_only=True)
    assert head.dev_id != snap.dev_id
    assert snap.stable_path.endswith("/krbd-snap@s1")
    assert pread_direct(snap.dev_path, 0, 4096) == b"1" * 4096
    assert pread_direct(head.dev_path, 0, 4096) == b"2" * 4096
    assert krbd.unmap(snap_id, timeout=TIMEOUT)
    assert krbd.find_mapped(iid) == head.dev_id
    krbd.unmap(iid, timeout=TIMEOUT)
    with rbd.Image(ceph.ioctx(), "krbd-snap") as img:
        img.remove_snap("s1")


def test_no_secret_on_any_command_line_during_map(ceph, images):
    iid = images("krbd-cmdline")
    key = ceph.key.reveal().encode()
    seen = []
    stop = threading.Event()

    def scan():
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        if key in f.read():
                            seen.append(pid)
                except OSError:
                    pass

    t = threading.Thread(target=scan)
    t.start()
    try:
        _map(ceph, iid)
        krbd.unmap(iid, timeout=TIMEOUT)
        _map(ceph, iid, use_keyring=False)
    finally:
        stop.set()
        t.join(10)
    assert seen == []


def test_secret_fallback_stays_out_of_world_readable_sysfs(ceph, images):
    iid = images("krbd-secret")
    dev = _map(ceph, iid, use_keyring=False)
    key = ceph.key.reveal().encode()
    files = _sysfs_files(dev.dev_id)
    # The fallback really passed the key inline, and the kernel keeps that add
    # string in config_info, readable by root only.
    mode, data = files["config_info"]
    assert b"secret=" in data and b"key=client." not in data
    assert mode & 0o077 == 0, oct(mode)
    for name, (mode, data) in files.items():
        if key in data:
            # Only config_info (the add string) may hold it, and it is root-only.
            assert name == "config_info" and mode & 0o077 == 0, (name, oct(mode))
        assert not (mode & 0o004 and key in data), name


def test_wrong_key_is_an_auth_error(ceph, images):
    iid = images("krbd-badkey")
    bad = Secret(make_cephx_key(os.urandom(16)))
    t0 = time.monotonic()
    with pytest.raises(AuthError) as e:
        krbd.map_image(iid, [ceph.mon_addr], Credentials("admin", bad, "test"), timeout=30)
    assert time.monotonic() - t0 < 35
    assert bad.reveal() not in str(e.value)
    assert krbd.find_mapped(iid) is None


def test_missing_image_is_not_found(ceph):
    iid = ceph.image_id("krbd-does-not-exist")
    with pytest.raises(NotFoundError):
        _map(ceph, iid)
    assert krbd.find_mapped(iid) is None


def test_monitor_hostname_is_resolved(ceph, images):
    iid = images("krbd-hostname")
    port = int(ceph.mon_addr.rsplit(":", 1)[1])
    dev = krbd.map_image(iid, [("localhost", port)], ceph.creds, timeout=TIMEOUT)
    assert krbd.find_mapped(iid) == dev.dev_id


def test_module_loaded_on_demand(ceph, images):
    """With the rbd module unloaded, map_image loads it (modprobe in a bounded
    subprocess) and maps. Runs last: it needs no device mapped."""
    import subprocess

    unmap_all()
    r = subprocess.run(["rmmod", "rbd"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    if r.returncode != 0:
        pytest.skip("cannot unload rbd here: %s" % r.stderr.strip())
    assert not os.path.exists("/sys/bus/rbd")
    iid = images("krbd-modprobe")
    dev = _map(ceph, iid)
    assert os.path.isdir("/sys/bus/rbd/devices/%d" % dev.dev_id)
    assert krbd.find_mapped(iid) == dev.dev_id
