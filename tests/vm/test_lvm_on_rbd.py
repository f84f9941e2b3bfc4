"""lvm_helpers on a real krbd device in the VM: lvm.conf types, device_state,
VG through the stable path, data through an LV landing in Ceph, pvresize,
map_and_activate."""
import os
import re

import pytest

from krbd_helpers import MIB, pattern, pread_direct, pwrite_direct
from lvm_helpers import lvmconf, pv, vg
from lvm_helpers.cmd import run as lvm
from rbdsr import krbd

TIMEOUT = 60


@pytest.fixture
def lvm_rbd(lvm_env):
    """A private LVM config whose devices section has our rbd types entry."""
    conf = lvm_env / "lvm.conf"
    conf.write_text(lvmconf.add_rbd_types(conf.read_text()))
    assert lvmconf.has_rbd_types(str(conf))
    return lvm_env


@pytest.fixture
def mapped(ceph, lvm_rbd):
    made = []

    def make(name, size=128 * MIB):
        ceph.create(name, size)
        iid = ceph.image_id(name)
        dev = krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=TIMEOUT)
        made.append((name, iid))
        return iid, dev

    yield make
    for name, iid in made:
        _teardown(iid)
        ceph.remove(name)


def _teardown(iid):
    for line in lvm(["vgs", "--noheadings", "-o", "vg_name"], check=False).out.split():
        if line.startswith("h3b_"):
            lvm(["vgchange", "-an", line], check=False)
            lvm(["vgremove", "-ff", "-y", line], check=False)
    krbd.unmap(iid, force=True, timeout=TIMEOUT)


def test_lvm_config_entry_is_understood_by_lvm(lvm_rbd):
    out = lvm(["lvmconfig", "devices/types"]).out
    assert '"rbd",1024' in out.replace(" ", "")
    original = (lvm_rbd / "lvm.conf").read_text()
    with open("/etc/lvm/lvm.conf") as f:
        assert lvmconf.remove_rbd_types(original) == f.read()


def test_device_state_through_the_life_of_a_pv(ceph, mapped):
    iid, dev = mapped("lvm-state")
    assert pv.device_state(dev.stable_path) == ("blank", None)
    lvm(["pvcreate", "-y", dev.stable_path])
    assert pv.device_state(dev.dev_path) == ("pv", None)
    lvm(["vgcreate", "-y", "--metadatasize", "10M", "h3b_state", dev.stable_path])
    assert pv.device_state(dev.stable_path) == ("pv", "h3b_state")
    # LVM sees the PV (by the stable path or the node, whichever it prints).
    pvs = lvm(["pvs", "--noheadings", "-o", "pv_name,vg_name"]).out
    assert re.search(r"(/dev/rbd%d|%s)\s+h3b_state" % (dev.dev_id, re.escape(dev.stable_path)), pvs), pvs
    lvm(["vgremove", "-ff", "-y", "h3b_state"])
    lvm(["pvremove", "-y", dev.stable_path])
    ceph.write("lvm-state", 128 * MIB - 4096, b"x" * 4096)
    assert pv.device_state(dev.stable_path) == ("data", None)


def test_lv_data_lands_in_ceph_at_pe_start_plus_le_offset(ceph, mapped):
    iid, dev = mapped("lvm-roundtrip")
    lvm(["pvcreate", "-y", dev.stable_path])
    lvm(["vgcreate", "-y", "h3b_rt", dev.stable_path])
    lvm(["lvcreate", "-y", "-an", "-n", "pad", "-L", "8m", "h3b_rt"])
    lvm(["lvcreate", "-y", "-n", "data", "-L", "32m", "h3b_rt"])
    lv_path = "/dev/h3b_rt/data"
    pe_start = int(lvm(["pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start",
                        dev.stable_path]).out.strip())
    extent = int(lvm(["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_extent_size",
                      "h3b_rt"]).out.strip())
    ranges = lvm(["lvs", "--noheadings", "-o", "seg_pe_ranges", "h3b_rt/data"]).out.strip()
    m = re.match(r"^\S+:(\d+)-(\d+)$", ranges)
    assert m, ranges
    first_pe = int(m.group(1))
    assert first_pe > 0  # the pad LV comes first, so the offset is not trivially pe_start
    data = pattern("lv", MIB)
    at = 5 * MIB
    pwrite_direct(lv_path, at, data)
    assert ceph.read("lvm-roundtrip", pe_start + first_pe * extent + at, MIB) == data
    # And the other way: librbd writes, the LV reads.
    back = pattern("librbd", 4096)
    ceph.write("lvm-roundtrip", pe_start + first_pe * extent + 9 * MIB, back)
    assert pread_direct(lv_path, 9 * MIB, 4096) == back

    vg.deactivate("h3b_rt")
    assert not os.path.exists(lv_path)
    assert vg.active_lvs("h3b_rt") == []
    vg.activate("h3b_rt")
    assert sorted(vg.active_lvs("h3b_rt")) == ["data", "pad"]
    assert pread_direct(lv_path, at, MIB) == data


def test_pvresize_after_image_growth(ceph, mapped):
    iid, dev = mapped("lvm-grow", size=64 * MIB)
    lvm(["pvcreate", "-y", dev.stable_path])
    lvm(["vgcreate", "-y", "h3b_grow", dev.stable_path])
    before = pv.pv_size(dev.stable_path)
    ceph.resize("lvm-grow", 192 * MIB)
    # The kernel picks the new size up from the header watch; wait for it.
    import time
    deadline = time.monotonic() + 30
    while pv.device_size(dev.dev_path) != 192 * MIB:
        assert time.monotonic() < deadline, "kernel did not see the new image size"
        time.sleep(0.2)
    after = pv.resize(dev.stable_path)
    assert after > before + 120 * MIB
    assert after == pv.pv_size(dev.stable_path)
    free = int(lvm(["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_free", "h3b_grow"]).out)
    assert free >= 180 * MIB


def test_stable_path_passes_an_xcpng_style_filter(ceph, lvm_rbd, mapped):
    """dom0's lvm.conf rejects xvd* and VG_Xen* LV paths; the stable path and
    /dev/rbdN must get through such a filter."""
    conf = lvm_rbd / "lvm.conf"
    text = conf.read_text()
    conf.write_text(text.replace("devices {", 'devices {\n\tfilter = [ "r|/dev/xvd.|", "r|/dev/VG_Xen.*/*|" ]', 1))
    assert "r|/dev/xvd.|" in lvm(["lvmconfig", "devices/filter"]).out
    iid, dev = mapped("lvm-filter")
    lvm(["pvcreate", "-y", dev.stable_path])
    lvm(["vgcreate", "-y", "h3b_filter", dev.stable_path])
    out = lvm(["vgs", "--noheadings", "-o", "vg_name,pv_count", "h3b_filter"]).out.split()
    assert out == ["h3b_filter", "1"]
    assert pv.device_state(dev.stable_path) == ("pv", "h3b_filter")
