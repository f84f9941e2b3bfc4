"""Wizard step 2 on a pool whose LUN list is larger than a pipe (64 KiB): XAPI
reads the driver's stderr through a pipe, and librados leaves fd 2
non-blocking, so the XML must still arrive whole when the reader is slow."""
import subprocess
import threading
import time

import pytest
import rbd

import driverharness as h
from rbdsr.smglue import probexml
from tests.ceph import backendkit as kit

N_IMAGES = 600  # ~110 KiB of LUN XML with these names


@pytest.fixture(scope="module")
def big_pool(ceph_cluster):
    admin = kit.admin(ceph_cluster)
    name = kit.make_pool(admin, prefix="big")
    with admin.open_ioctx(name) as io:
        for i in range(N_IMAGES):
            rbd.RBD().create(io, "xcp-image-with-a-long-name-%04d" % i, 1 << 20, old_format=False, features=1)
    yield name
    kit.remove_pool(admin, name)
    admin.shutdown()


def test_lun_list_larger_than_a_pipe_arrives_whole(ceph_cluster, big_pool, tmp_path):
    tree = h.SMTree(str(tmp_path / "sm"), "flat")
    refs = tree.seed()
    dconf = {"target": ceph_cluster.mon_addr, "port": "6789", "chapuser": "admin",
             "chappassword": ceph_cluster.admin_key, "targetIQN": big_pool, "timeout": "30"}
    call = h.method_call("sr_probe", dconf, host_ref=refs["hosts"][0])
    proc = subprocess.Popen([tree.python, tree.script, call], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=tree.env(), cwd=tree.workdir)
    chunks = {}

    def read(name, pipe, delay):
        time.sleep(delay)  # a slow reader: the pipe fills while the driver writes
        chunks[name] = pipe.read()

    readers = [threading.Thread(target=read, args=("out", proc.stdout, 0)),
               threading.Thread(target=read, args=("err", proc.stderr, 5))]
    for t in readers:
        t.start()
    for t in readers:
        t.join(180)
    proc.wait(60)
    err = chunks["err"].decode()
    assert len(err) > 65536
    luns = probexml.parse_luns(err)
    assert len(luns) == N_IMAGES
    assert b"faultCode" in chunks["out"] and b"<int>107</int>" in chunks["out"]
