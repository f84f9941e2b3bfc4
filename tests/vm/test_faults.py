"""Faults with the real kernel client and a bluestore cluster in the VM: an OSD
restart in the middle of I/O is survived with the data intact; a dead or
silent monitor fails a map with a clear error within the timeout. (The
driver's own rollback after a failed attach is in test_driver_faults.py.)"""
import os
import signal
import socket
import sys
import threading
import time

import pytest

from krbd_helpers import MIB, REPO, Ceph, pattern, pread_direct, pwrite_direct, start_cluster, unmap_all
from rbdsr import krbd
from rbdsr.errors import TimeoutError_, UnreachableError

TIMEOUT = 60


@pytest.fixture(scope="module")
def bluestore(request, tmp_path_factory, krbd_ready):
    state = start_cluster(request, tmp_path_factory, objectstore="bluestore")
    c = Ceph(state)
    yield c
    unmap_all()
    c.close()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_osd_restart_during_io(bluestore):
    """A writer keeps writing through krbd while the OSD is stopped and started
    again; its writes block during the outage and resume, and every chunk holds
    the last data written to it, through krbd and through librbd."""
    sys.path.insert(0, os.path.join(REPO, "tools"))
    from cephlab import cluster as cephlab

    ceph = bluestore
    ceph.create("fault-osd", 64 * MIB)
    iid = ceph.image_id("fault-osd")
    chunk, chunks = MIB, 16
    last = {}
    writes = []
    errors = []
    restarted = threading.Event()
    stop = threading.Event()
    try:
        dev = krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=TIMEOUT)

        def writer():
            n = 0
            try:
                while not stop.is_set():
                    i = n % chunks
                    data = pattern("osd%d-%d" % (i, n), chunk)
                    pwrite_direct(dev.dev_path, i * chunk, data)
                    last[i] = data
                    writes.append(restarted.is_set())
                    n += 1
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 60
        while len(writes) < 2 and t.is_alive():
            assert time.monotonic() < deadline, "writes did not start"
            time.sleep(0.05)
        info = cephlab.restart_osd(ceph.cluster["dir"], timeout=240)
        restarted.set()
        deadline = time.monotonic() + 120
        while writes.count(True) < chunks and t.is_alive():
            assert time.monotonic() < deadline, "I/O did not resume after the OSD restart"
            time.sleep(0.1)
        stop.set()
        t.join(120)
        assert not t.is_alive(), "the writer is stuck"
        assert errors == []
        assert writes.count(False) >= 2 and writes.count(True) >= chunks
        for i in range(chunks):
            assert pread_direct(dev.dev_path, i * chunk, chunk) == last[i], "chunk %d via krbd" % i
            assert ceph.read("fault-osd", i * chunk, chunk) == last[i], "chunk %d via librbd" % i
        assert info["restart_seconds"] > 0
    finally:
        stop.set()
        krbd.unmap(iid, force=True, timeout=TIMEOUT)
        ceph.remove("fault-osd")


def test_dead_monitor_fails_within_timeout(bluestore):
    iid = bluestore.image_id("fault-nomon")
    t0 = time.monotonic()
    with pytest.raises((UnreachableError, TimeoutError_)) as e:
        krbd.map_image(iid, ["127.0.0.1:%d" % _free_port()], bluestore.creds, timeout=8)
    elapsed = time.monotonic() - t0
    assert elapsed < 8 + 3, elapsed
    assert "fault-nomon" in str(e.value)
    assert e.value.key in ("ISCSITarget", "SRUnavailable")
    assert krbd.find_mapped(iid) is None


def test_silent_monitor_fails_within_timeout(bluestore):
    """A monitor that accepts TCP but never answers (SIGSTOPped) is the hang case."""
    ceph = bluestore
    ceph.create("fault-silent", 16 * MIB)
    iid = ceph.image_id("fault-silent")
    pidfile = os.path.join(ceph.cluster["dir"], "run", "mon.a.pid")
    with open(pidfile) as f:
        mon_pid = int(f.read().strip())
    os.kill(mon_pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises((UnreachableError, TimeoutError_)):
            krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=8)
        assert time.monotonic() - t0 < 8 + 3
    finally:
        os.kill(mon_pid, signal.SIGCONT)
    # The cluster recovers and the same map now works.
    dev = krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=TIMEOUT)
    assert krbd.find_mapped(iid) == dev.dev_id
    krbd.unmap(iid, timeout=TIMEOUT)
    ceph.remove("fault-silent")
