"""rbdsr.cleanup picks only mappings of RBD SRs whose PBD here is unplugged."""
import os

import pytest

from rbdsr import cleanup
from rbdsr.errors import TimeoutError_
from rbdsr.sysfs import MappedInfo


def _m(dev_id, pool, image, ns="", snap="-"):
    return MappedInfo(dev_id, "f", pool, ns, image, snap, 251, dev_id * 16)


def _dc(iqn, image, port="6789"):
    return {"target": "10.0.0.1", "port": port, "targetIQN": iqn, "SCSIid": image}


def test_only_unplugged_rbd_srs():
    mapped = [_m(0, "rbd", "a"), _m(1, "rbd", "b"), _m(2, "rbd", "c"), _m(3, "rbd", "d", ns="t"),
              _m(4, "rbd", "a", snap="s1"), _m(5, "other", "e")]
    pbds = [("sr-a", _dc("rbd", "a"), False),            # unplugged: stale
            ("sr-b", _dc("rbd", "b"), True),             # plugged
            ("sr-c", _dc("rbd", "c", port="3260"), False),  # an iSCSI SR of that name: not ours
            ("sr-d", _dc("rbd/t", "d"), False)]          # namespace: stale
    got = [(i.dev_id, u) for i, u in cleanup.stale(mapped, pbds)]
    assert got == [(0, "sr-a"), (3, "sr-d")]


def test_an_image_two_srs_name_is_left_alone():
    pbds = [("sr-1", _dc("rbd", "a"), False), ("sr-2", _dc("rbd", "a"), False)]
    assert cleanup.stale([_m(0, "rbd", "a")], pbds) == []


def test_sm_lock_is_waited_for_with_a_bound(tmp_path):
    import fcntl
    import time
    (tmp_path / "sr-x").mkdir()
    ready = str(tmp_path / "held")
    pid = os.fork()
    if pid == 0:  # another process holds sm's lock (fcntl locks are per process)
        fd = os.open(str(tmp_path / "sr-x" / "sr"), os.O_RDWR | os.O_CREAT)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        open(ready, "w").close()
        time.sleep(60)
        os._exit(0)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(TimeoutError_):
            with cleanup.SRLock("sr-x", timeout=1, root=str(tmp_path)):
                pass
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    with cleanup.SRLock("sr-x", timeout=1, root=str(tmp_path)):
        pass


def test_host_uuid_from_the_inventory(tmp_path):
    inv = tmp_path / "inv"
    inv.write_text("PRIMARY_DISK='/dev/sda'\nINSTALLATION_UUID='1234-abcd'\n")
    assert cleanup.local_host_uuid(str(inv)) == "1234-abcd"
