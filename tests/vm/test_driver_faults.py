"""Faults through the driver's real entry point in the VM (real krbd, LVM, Ceph):

- the OSDs stop right after the driver mapped the image, during sr_create,
  sr_attach and sr_delete: each call fails within the SR's timeout plus a
  margin (TCG start-up of the driver and its helper) instead of hanging;
- the monitor is gone at sr_attach: the map fails within the timeout;
- while the RBD cluster is down, LVM for a different, loop-backed VG still
  answers (the map's osd_request_timeout ends the scan of the dead device);
- the driver's own rollback: sm's attach fails after the map, and the driver
  deactivates and unmaps;
- two sr_create calls on one image at once: exactly one succeeds;
- sr_delete leaves nothing written in the image (VDI data discarded).
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import driverharness as h
from krbd_helpers import MIB, REPO, Ceph, start_cluster, unmap_all
from lvm_helpers.cmd import run as lvm
from rbdsr import krbd
from test_driver_lifecycle import SR, image_exists, lvm_dirs, meta, new_image  # noqa: F401 (fixture)

SR_TIMEOUT = 10  # device-config timeout of the SRs here
OSD_TIMEOUT = 20  # device-config osd_timeout
MARGIN = 30  # driver and helper start-up under TCG, rollback


@pytest.fixture(scope="module")
def ceph(request, tmp_path_factory, krbd_ready, dm_ready):
    c = Ceph(start_cluster(request, tmp_path_factory, objectstore="bluestore"))
    yield c
    unmap_all()
    c.close()


def _tree(request, tmp_path, lvm_dirs, vm_results_dir, name):  # noqa: F811
    t = h.SMTree(str(tmp_path / name), "flat")
    t.slave_env = {"LVM_SYSTEM_DIR": lvm_dirs}

    def keep_log():
        if os.path.exists(t.smlog):
            shutil.copy(t.smlog, os.path.join(vm_results_dir, "SMlog-%s-%s" % (request.node.name, name)))
    request.addfinalizer(keep_log)
    return t


@pytest.fixture
def tree(request, tmp_path, lvm_dirs, monkeypatch, vm_results_dir):  # noqa: F811
    monkeypatch.setenv("LVM_SYSTEM_DIR", lvm_dirs)
    return _tree(request, tmp_path, lvm_dirs, vm_results_dir, "sm")


@pytest.fixture
def tree2(request, tmp_path, lvm_dirs, tree, vm_results_dir):  # noqa: F811
    """A second pool (its own XAPI database) on the same Ceph cluster."""
    return _tree(request, tmp_path, lvm_dirs, vm_results_dir, "sm2")


def _pid(ceph, name):
    with open(os.path.join(ceph.cluster["dir"], "run", "%s.pid" % name)) as f:
        return int(f.read().strip())


def _cephlab():
    sys.path.insert(0, os.path.join(REPO, "tools"))
    from cephlab import cluster
    return cluster


class Outage(object):
    """Takes a daemon away the moment the driver's map is done -- its stable
    path exists, made after the kernel's add returned (the kernel lists the
    device earlier, while add still reads the partition table) -- so the
    driver's next step is its first read of the device. The OSD is frozen and
    killed (a crash; bluestore keeps its data) and started again on exit; a
    monitor is frozen (SIGSTOP) and thawed."""

    def __init__(self, ceph, image, daemon="osd", at_once=False):
        self.ceph = ceph
        self.daemon = daemon
        self.link = krbd.stable_path(krbd.ImageId(ceph.fsid, ceph.pool, "", image))
        self.stopped = threading.Event()
        self.done = threading.Event()
        self.at_once = at_once
        self.error = []
        self.thread = threading.Thread(target=self._watch)

    def _watch(self):
        while not self.done.is_set():
            if self.at_once or os.path.lexists(self.link):
                try:
                    if self.daemon == "osd":
                        _cephlab().kill_osd(self.ceph.cluster["dir"])
                    else:
                        os.kill(_pid(self.ceph, self.daemon), signal.SIGSTOP)
                    self.at = time.monotonic()
                    self.stopped.set()
                except Exception as e:  # noqa: BLE001 - reported by the test
                    self.error.append(e)
                return
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        if self.at_once:
            self.stopped.wait(60)
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(60)
        if self.stopped.is_set():
            if self.daemon == "osd":
                _cephlab().start_osd(self.ceph.cluster["dir"], timeout=300)
            else:
                os.kill(_pid(self.ceph, self.daemon), signal.SIGCONT)
        assert not self.error, self.error


def _sr(tree, ceph, image, **kw):
    return SR(tree, ceph, image, hosts=1, timeout=str(SR_TIMEOUT), osd_timeout=str(OSD_TIMEOUT), **kw)


def _timed_failure(sr, command, outage, **kw):
    """The call fails, and answers within the SR's timeout (plus a margin for
    TCG) from the moment the daemon went away."""
    r = sr.call(command, expect_ok=False, **kw)
    end = time.monotonic()
    assert r.fault_code is not None, r
    assert outage.stopped.is_set(), "the call ended before the outage began: %r" % r
    elapsed = end - outage.at
    assert elapsed < SR_TIMEOUT + MARGIN, "%s answered %.0f s after the outage began" % (command, elapsed)
    return r, elapsed


def _settle(sr):
    """After the OSD is back: leave no mapping behind."""
    krbd.unmap(sr.image_id(), force=True, timeout=60)
    lvm(["vgchange", "-an", sr.vg], check=False)


def test_osd_stopped_after_map_during_create(tree, ceph):
    image = new_image(ceph, "fc")
    sr = _sr(tree, ceph, image)
    with Outage(ceph, image) as f:
        r, _ = _timed_failure(sr, "sr_create", f, args=[str(128 * MIB)])
    assert r.fault_code == 47, r  # SRUnavailable: no answer from the device
    assert "no answer from the device" in r.fault_string
    _settle(sr)
    # this SR's next sr_create takes over what the failed one left (image, lock, tag)
    sr.call("sr_create", args=[str(128 * MIB)])
    assert meta(ceph, image) == sr.uuid and not sr.mapped()


def test_osd_stopped_after_map_during_attach_and_delete(tree, ceph):
    image = new_image(ceph, "fa")
    sr = _sr(tree, ceph, image)
    sr.call("sr_create", args=[str(128 * MIB)])
    for command in ("sr_attach", "sr_delete"):
        with Outage(ceph, image) as f:
            r, _ = _timed_failure(sr, command, f)
        assert r.fault_code == 47 and "no answer from the device" in r.fault_string, r
        _settle(sr)
    # nothing lost: the SR attaches once the cluster answers
    sr.call("sr_attach")
    sr.call("sr_detach")
    assert not sr.mapped()


def test_monitor_gone_at_attach(tree, ceph):
    image = new_image(ceph, "fm")
    sr = _sr(tree, ceph, image)
    sr.call("sr_create", args=[str(128 * MIB)])
    with Outage(ceph, image, daemon="mon.a", at_once=True) as f:
        r, _ = _timed_failure(sr, "sr_attach", f)
    assert r.fault_code in (141, 47), r  # ISCSITarget / SRUnavailable
    assert not sr.mapped()


def test_lvm_of_another_vg_answers_while_the_rbd_cluster_is_down(tree, ceph, tmp_path):
    loop_file = str(tmp_path / "loop.img")
    with open(loop_file, "wb") as f:
        f.truncate(64 * MIB)
    loop = subprocess.run(["losetup", "-f", "--show", loop_file], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True, timeout=60).stdout.strip()
    image = new_image(ceph, "fl")
    ceph.create(image, 64 * MIB)
    iid = krbd.ImageId(ceph.fsid, ceph.pool, "", image)
    try:
        lvm(["vgcreate", "-y", "h13_loop", loop])
        krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=60, osd_timeout=OSD_TIMEOUT)
        with Outage(ceph, image, at_once=True):
            t0 = time.monotonic()
            res = lvm(["vgs", "--noheadings", "-o", "vg_name", "h13_loop"], timeout=OSD_TIMEOUT + MARGIN)
            elapsed = time.monotonic() - t0
        assert res.out.strip() == "h13_loop"
        assert elapsed < OSD_TIMEOUT + MARGIN
    finally:
        krbd.unmap(iid, force=True, timeout=60)
        lvm(["vgremove", "-y", "h13_loop"], check=False)
        subprocess.run(["losetup", "-d", loop], timeout=60)
        ceph.remove(image)


def test_driver_rolls_back_when_sm_attach_fails_after_the_map(tree, ceph):
    image = new_image(ceph, "fr")
    sr = _sr(tree, ceph, image)
    sr.call("sr_create", args=[str(128 * MIB)])
    sr.call("sr_attach")
    lvm(["lvremove", "-f", "%s/MGT" % sr.vg])
    sr.call("sr_detach")
    # sm's attach re-creates MGT; a device-mapper device holding its dm name makes that fail
    dm = "%s-MGT" % sr.vg.replace("-", "--")
    lvm(["dmsetup", "create", dm, "--table", "0 8 zero"])
    try:
        r = sr.call("sr_attach", expect_ok=False)
        assert r.fault_code is not None, r
        assert not sr.mapped(), "the driver left the image mapped after a failed attach"
        assert not os.path.lexists(krbd.stable_path(sr.image_id()))
    finally:
        lvm(["dmsetup", "remove", dm], check=False)
    sr.call("sr_attach")
    sr.call("sr_detach")


def test_concurrent_creates_on_one_image(tree, tree2, ceph):
    image = new_image(ceph, "fx")
    ceph.create(image, 128 * MIB)
    a, b = _sr(tree, ceph, image), _sr(tree2, ceph, image)
    results = {}

    def create(sr):
        results[sr.uuid] = sr.call("sr_create", args=["0"], expect_ok=False)

    threads = [threading.Thread(target=create, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    ok = [u for u, r in results.items() if r.ok]
    assert len(results) == 2 and len(ok) == 1, results
    loser = [r for r in results.values() if not r.ok][0]
    assert loser.fault_code == 16, loser
    assert meta(ceph, image) == ok[0]
    assert not a.mapped()
    assert b"LABELONE" in ceph.read(image, 0, 4096)  # the winner's PV


def test_delete_leaves_nothing_written(tree, ceph):
    import rbd
    image = new_image(ceph, "fd")
    sr = _sr(tree, ceph, image)
    sr.call("sr_create", args=[str(128 * MIB)])
    ceph.write(image, 64 * MIB, b"guest data" * 400)  # what a VDI leaves in the middle
    sr.call("sr_delete")
    written = []
    with rbd.Image(ceph.ioctx(), image, read_only=True) as img:
        img.diff_iterate(0, img.size(), None, lambda o, n, e: written.append((o, n)) if e else None)
    assert written == [] and ceph.read(image, 64 * MIB, 4000) == bytes(4000)
    assert image_exists(ceph, image)


def _set_attached(tree, sr, value):
    db = h.XenAPI.load_db(tree.db)
    for pbd in db["PBD"].values():
        pbd["currently_attached"] = value
    h.XenAPI.save_db(db, tree.db)


def test_cleanup_unmaps_the_mapping_of_an_unplugged_sr(tree, ceph, tmp_path):
    from rbdsr import cleanup
    image = new_image(ceph, "fk")
    sr = _sr(tree, ceph, image)
    sr.call("sr_create", args=[str(128 * MIB)])
    sr.call("sr_attach")
    tree.xapi()  # the stand-in session reads this tree's database
    session = h.XenAPI.xapi_local()
    host_uuid = h.XenAPI.load_db(tree.db)["host"][sr.refs["hosts"][0]]["uuid"]
    locks = str(tmp_path / "locks")
    _set_attached(tree, sr, True)  # plugged: left alone
    assert cleanup.cleanup(session, host_uuid, apply=True, log=print, lock_root=locks) == []
    assert sr.mapped()
    # an active LV holds it: never forced
    _set_attached(tree, sr, False)
    lvm(["lvchange", "-ay", "%s/MGT" % sr.vg])
    assert cleanup.cleanup(session, host_uuid, apply=True, log=print, lock_root=locks) == []
    assert sr.mapped()
    # what a failed attach leaves: mapped, nothing active, PBD unplugged
    _set_attached(tree, sr, False)
    lvm(["vgchange", "-an", sr.vg])
    assert len(cleanup.cleanup(session, host_uuid, apply=True, log=print, lock_root=locks)) == 1
    assert not sr.mapped()
    sr.call("sr_attach")  # nothing lost
    sr.call("sr_detach")


def test_probe_maps_read_only(tree, ceph):
    from rbdsr import sysfs
    image = new_image(ceph, "fp")
    sr = _sr(tree, ceph, image)
    sr.call("sr_create", args=[str(128 * MIB)])
    iid = sr.image_id()
    seen = set()
    done = threading.Event()

    def watch():  # the probe maps, looks and unmaps: record the device's ro flag meanwhile
        while not done.is_set():
            dev_id = krbd.find_mapped(iid)
            if dev_id is not None:
                # /sys/block/rbdN appears a moment after the bus device
                ro = sysfs.read_attr(os.path.join(sysfs.block_dir(dev_id), "ro"))
                if ro is not None:
                    seen.add(ro)
            time.sleep(0.002)

    t = threading.Thread(target=watch)
    t.start()
    try:
        dconf = dict(sr.dconf, chappassword=sr.key)
        del dconf["chappassword_secret"]
        r = sr.probe(dconf)
    finally:
        done.set()
        t.join(10)
    assert r.ok, r
    assert seen == {"1"}, seen
    assert not sr.mapped()
