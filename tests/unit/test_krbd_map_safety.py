"""krbd map requests: the OSD request timeout every map carries, and a map the
kernel accepted under an identity find_mapped does not match is undone.
The kernel's sysfs bus is emulated in a temp tree (the real one is in tests/vm)."""
import os
import shutil

import pytest

from rbdsr.credentials import Credentials
from rbdsr import krbd
from rbdsr.errors import MapError, TimeoutError_

FSID = "11111111-2222-3333-4444-555555555555"
OTHER_FSID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def test_every_map_bounds_osd_requests():
    opts = krbd.build_options("admin", 30, osd_timeout=krbd.OSD_REQUEST_TIMEOUT)
    assert "osd_request_timeout=%d" % krbd.OSD_REQUEST_TIMEOUT in opts.split(",")
    assert "osd_request_timeout" not in krbd.build_options("admin", 30, osd_timeout=0)


class FakeBus(object):
    """/sys/bus/rbd whose add creates a device reporting `report_fsid`."""

    def __init__(self, root, report_fsid):
        self.root = root
        self.report_fsid = report_fsid
        self.writes = []
        os.makedirs(os.path.join(root, "bus", "rbd", "devices"))
        for f in ("add_single_major", "remove_single_major"):
            open(os.path.join(root, "bus", "rbd", f), "w").close()

    def write(self, path, data):
        data = data.decode()
        self.writes.append((os.path.basename(path), data))
        if path.endswith("add_single_major"):
            pool, image = data.split()[-2:]
            d = os.path.join(self.root, "bus", "rbd", "devices", "7")
            os.makedirs(d)
            for k, v in (("pool", pool), ("name", image), ("pool_ns", ""), ("current_snap", "-"),
                         ("cluster_fsid", self.report_fsid)):
                with open(os.path.join(d, k), "w") as f:
                    f.write(v + "\n")
            os.makedirs(os.path.join(self.root, "block", "rbd7", "holders"))
        elif path.endswith("remove_single_major"):
            n = data.split()[0]
            shutil.rmtree(os.path.join(self.root, "bus", "rbd", "devices", n))
            shutil.rmtree(os.path.join(self.root, "block", "rbd" + n))


@pytest.fixture
def bus(tmp_path, monkeypatch):
    b = FakeBus(str(tmp_path / "sys"), OTHER_FSID)
    monkeypatch.setattr(krbd, "_write_sysfs", b.write)
    monkeypatch.setattr(krbd, "_udev_running", lambda: True)
    return b


def _map(tmp_path, image_id, **kw):
    return krbd.map_image(image_id, ["127.0.0.1:6789"], Credentials("admin", None, "test"), timeout=5,
                          sysfs_root=str(tmp_path / "sys"), dev=str(tmp_path / "dev"),
                          stable_root=str(tmp_path / "stable"), lock_path=str(tmp_path / "lock"), **kw)


def test_accepted_but_unmatched_map_is_unmapped(bus, tmp_path):
    iid = krbd.ImageId(FSID, "rbd", "", "img")
    with pytest.raises(MapError) as e:
        _map(tmp_path, iid)
    assert "unmapped again" in str(e.value)
    assert os.listdir(os.path.join(bus.root, "bus", "rbd", "devices")) == []
    assert ("remove_single_major", "7") in bus.writes


def test_the_add_string_carries_the_osd_timeout(bus, tmp_path):
    bus.report_fsid = FSID
    iid = krbd.ImageId(FSID, "rbd", "", "img")
    os.makedirs(str(tmp_path / "dev"))
    with pytest.raises(TimeoutError_):
        _map(tmp_path, iid, osd_timeout=45)  # no /sys/block/rbd7/dev here: the node wait fails
    add = [d for f, d in bus.writes if f == "add_single_major"]
    assert add and "osd_request_timeout=45" in add[0].split()[1].split(",")
