"""Parsing of the rbd sysfs tree and exact identity matching, against a temp
directory laid out like /sys (the real kernel is exercised in tests/vm)."""
import os
import stat
import time

import pytest

from rbdsr import krbd, sysfs
from rbdsr.errors import MapError, TimeoutError_

FSID_A = "11111111-2222-3333-4444-555555555555"
FSID_B = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def _dev(root, n, pool, name, ns="", snap="-", fsid=FSID_A, pool_ns_attr=True, holders=()):
    d = os.path.join(root, "bus", "rbd", "devices", str(n))
    os.makedirs(d)
    attrs = {"pool": pool, "name": name, "current_snap": snap, "cluster_fsid": fsid,
             "major": "251", "minor": str(n * 16)}
    if pool_ns_attr:
        attrs["pool_ns"] = ns
    for k, v in attrs.items():
        with open(os.path.join(d, k), "w") as f:
            f.write(v + "\n")
    b = os.path.join(root, "block", "rbd%d" % n)
    os.makedirs(os.path.join(b, "holders"))
    with open(os.path.join(b, "dev"), "w") as f:
        f.write("251:%d\n" % (n * 16))
    with open(os.path.join(b, "ro"), "w") as f:
        f.write("0\n")
    for h in holders:
        os.makedirs(os.path.join(root, "block", h, "dm"), exist_ok=True)
        with open(os.path.join(root, "block", h, "dm", "name"), "w") as f:
            f.write("VG_XenStorage--x-MGT\n")
        os.symlink(os.path.join(root, "block", h), os.path.join(b, "holders", h))


@pytest.fixture
def tree(tmp_path):
    root = str(tmp_path)
    _dev(root, 0, "rbd", "vm10")
    _dev(root, 1, "rbd", "vm1", holders=("dm-3",))
    _dev(root, 2, "other", "vm1")
    _dev(root, 3, "rbd", "vm1", ns="tenant")
    _dev(root, 4, "rbd", "vm1", snap="snap1")
    _dev(root, 5, "rbd", "vm1", fsid=FSID_B)
    os.makedirs(os.path.join(root, "bus", "rbd", "devices", "not-a-device"))
    return root


def test_list_mapped_reads_every_identity_field(tree):
    infos = sysfs.list_mapped(tree)
    assert [i.dev_id for i in infos] == [0, 1, 2, 3, 4, 5]
    assert infos[3] == sysfs.MappedInfo(3, FSID_A, "rbd", "tenant", "vm1", "-", 251, 48)
    assert infos[4].snap == "snap1"


def test_exact_match_never_substring(tree):
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "", "vm1"), tree) == 1
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "", "vm10"), tree) == 0
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "", "vm"), tree) is None
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "", "vm100"), tree) is None


def test_pool_namespace_snap_and_cluster_are_part_of_identity(tree):
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "other", "", "vm1"), tree) == 2
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "tenant", "vm1"), tree) == 3
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "", "vm1", "snap1"), tree) == 4
    assert krbd.find_mapped(krbd.ImageId(FSID_B.upper(), "rbd", "", "vm1"), tree) == 5
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "tenant2", "vm1"), tree) is None
    assert krbd.find_mapped(krbd.ImageId(FSID_B, "other", "", "vm1"), tree) is None


def test_unknown_fsid_refuses_ambiguity(tree):
    with pytest.raises(MapError) as e:
        krbd.find_mapped(krbd.ImageId(None, "rbd", "", "vm1"), tree)
    assert "rbd1" in str(e.value) and "rbd5" in str(e.value)
    assert krbd.find_mapped(krbd.ImageId(None, "other", "", "vm1"), tree) == 2


def test_missing_pool_ns_attribute_means_default_namespace(tmp_path):
    root = str(tmp_path)
    _dev(root, 7, "rbd", "img", pool_ns_attr=False)
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "", "img"), root) == 7
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "ns", "img"), root) is None


def test_no_rbd_bus_means_nothing_mapped(tmp_path):
    assert sysfs.list_mapped(str(tmp_path)) == []
    assert krbd.find_mapped(krbd.ImageId(FSID_A, "rbd", "", "vm1"), str(tmp_path)) is None


def test_holders_name_dm_devices(tree):
    assert sysfs.holders(1, tree) == ["dm-3 (VG_XenStorage--x-MGT)"]
    assert sysfs.holders(0, tree) == []
    assert krbd.busy_reason(1, tree, dev=tree) == "held by dm-3 (VG_XenStorage--x-MGT)"


def test_block_devnum_and_ro(tree):
    assert sysfs.block_devnum(3, tree) == (251, 48)
    assert sysfs.block_devnum(9, tree) is None
    assert sysfs.is_read_only(3, tree) is False


def test_unmap_of_unmapped_device_is_a_no_op(tree):
    assert krbd.unmap_device(42, sysfs_root=tree, dev=tree) is False


def _can_mknod(tmp_path):
    try:
        os.mknod(str(tmp_path / "probe"), stat.S_IFBLK | 0o600, os.makedev(7, 200))
        os.unlink(str(tmp_path / "probe"))
        return True
    except OSError:
        return False


def test_node_made_from_sysfs_dev_when_udev_does_not(tree, tmp_path):
    devdir = tmp_path / "dev"
    devdir.mkdir()
    if not _can_mknod(devdir):
        pytest.skip("mknod not permitted here")
    path = krbd.wait_for_node(3, 2, tree, str(devdir), udev=False)
    st = os.stat(path)
    assert path == str(devdir / "rbd3")
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(251, 48)
    # A stale node with another device number is replaced, not trusted.
    os.unlink(path)
    os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(251, 0))
    krbd.wait_for_node(3, 2, tree, str(devdir), udev=False)
    assert os.stat(path).st_rdev == os.makedev(251, 48)


def test_node_wait_is_bounded_when_sysfs_never_shows_the_device(tree, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError_):
        krbd.wait_for_node(9, 0.3, tree, str(tmp_path), udev=True)
    assert time.monotonic() - t0 < 2
