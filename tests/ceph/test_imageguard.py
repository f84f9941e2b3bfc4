"""Whether an image may be formatted, as Ceph knows it (written extents,
watchers), and the cluster-wide creation lock -- through both backends, which
must see the same things and exclude each other."""
import threading
import uuid

import pytest
import rbd

from rbdsr import imageguard
from rbdsr.backends import open_backend
from rbdsr.config import TargetConfig
from rbdsr.errors import InUseError
from tests.ceph import backendkit as kit
from tests.sshd import sshd  # noqa: F401  (fixture)

POOL_PREFIX = "h13g"  # tests/ceph/conftest.py names this module's pool

MiB = 1 << 20


@pytest.fixture(scope="module")
def ssh_backend(ceph_cluster, sshd, pool):  # noqa: F811
    cfg = TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, cephx_id="h13g-" + uuid.uuid4().hex[:6],
                                             create_cephx_user="true"))
    b = open_backend(cfg)
    yield b
    b.close()


def _lib(ceph_cluster, pool, ssh_backend):
    creds = ssh_backend.fetch_credentials()
    return open_backend(TargetConfig.from_dconf(kit.dconf(ceph_cluster, pool, creds.key.reveal(),
                                                         user=creds.cephx_id)))


@pytest.fixture(scope="module")
def lib_backend(ceph_cluster, pool, ssh_backend):
    b = _lib(ceph_cluster, pool, ssh_backend)
    yield b
    b.close()


@pytest.fixture(params=["librbd", "ssh"])
def backend(request, lib_backend, ssh_backend):
    return lib_backend if request.param == "librbd" else ssh_backend


class Cfg(object):
    def __init__(self, pool, image, namespace=""):
        self.pool, self.image, self.namespace = pool, image, namespace


@pytest.fixture
def image(admin, pool):
    name = "h13g-" + uuid.uuid4().hex[:8]
    io = admin.open_ioctx(pool)
    rbd.RBD().create(io, name, 64 * MiB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
    yield io, name
    try:
        rbd.RBD().remove(io, name)
    except rbd.Error:
        pass
    io.close()


def test_fresh_image_is_unused(backend, pool, image):
    io, name = image
    assert backend.written_extents(pool, "", name) == []
    imageguard.check_unused(backend, Cfg(pool, name))


def test_data_in_the_middle_is_seen(backend, pool, image):
    # an XFS superblock at 2 MiB: the first and last MiB are zero, blkid on them sees nothing
    io, name = image
    with rbd.Image(io, name) as img:
        img.write(b"XFSB" + b"\0" * 4092, 2 * MiB)
    assert [off for off, _len in backend.written_extents(pool, "", name)] == [0]  # the 4 MiB object
    with pytest.raises(InUseError) as e:
        imageguard.check_unused(backend, Cfg(pool, name))
    assert "written" in str(e.value) and e.value.key == "SRInUse"


def test_zeros_written_still_count(backend, pool, image):
    io, name = image
    with rbd.Image(io, name) as img:
        img.write(b"\0" * 4096, 40 * MiB)
    with pytest.raises(InUseError):
        imageguard.check_unused(backend, Cfg(pool, name))


def test_discarded_image_is_unused_again(backend, pool, image):
    io, name = image
    with rbd.Image(io, name) as img:
        img.write(b"x" * 4096, 0)
        img.discard(0, img.size())
    assert backend.written_extents(pool, "", name) == []


def test_another_client_holding_it_open_is_refused(backend, pool, image):
    io, name = image
    with rbd.Image(io, name) as img:  # read-write open: a watch, as a mapping has
        with pytest.raises(InUseError) as e:
            imageguard.check_unused(backend, Cfg(pool, name))
        assert "another client has it open" in str(e.value)
        watcher = backend.image_info(pool, "", name).watchers[0]
        # our own client instance (the kernel's, on this host) does not count
        imageguard.check_unused(backend, Cfg(pool, name), own_addrs=["v1:" + watcher])
        del img


def test_creation_lock_is_exclusive_across_backends(lib_backend, ssh_backend, pool, image):
    _io, name = image
    cfg = Cfg(pool, name)
    a = imageguard.CreateClaim(lib_backend, cfg, "sr-a")
    b = imageguard.CreateClaim(ssh_backend, cfg, "sr-b")
    a.acquire()
    with pytest.raises(InUseError) as e:
        b.acquire()
    assert "rbdsr-create-sr-a" in str(e.value) and "rbd lock rm" in str(e.value)
    a.release()
    assert not a.held, getattr(a, 'error', None)
    b.acquire()
    with pytest.raises(InUseError):
        a.acquire()
    b.release()
    assert lib_backend.lockers(pool, "", name) == []


def test_own_stale_lock_is_taken_over(lib_backend, ssh_backend, pool, image):
    _io, name = image
    cfg = Cfg(pool, name)
    imageguard.CreateClaim(ssh_backend, cfg, "sr-a").acquire()  # then "killed": never released
    again = imageguard.CreateClaim(lib_backend, cfg, "sr-a")
    again.acquire()
    assert [c for _l, c, _a in lib_backend.lockers(pool, "", name)] == ["rbdsr-create-sr-a"]
    again.release()
    assert ssh_backend.lockers(pool, "", name) == []


def test_concurrent_claims_one_winner(ceph_cluster, pool, ssh_backend, image):
    _io, name = image
    cfg = Cfg(pool, name)
    backends = [_lib(ceph_cluster, pool, ssh_backend) for _ in range(4)]
    won, lost = [], []
    go = threading.Event()

    def contender(i):
        claim = imageguard.CreateClaim(backends[i], cfg, "sr-%d" % i)
        go.wait()
        try:
            claim.acquire()
            won.append(i)
        except InUseError:
            lost.append(i)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    try:
        assert len(won) == 1 and sorted(won + lost) == [0, 1, 2, 3]
    finally:
        for i in won:
            backends[i].unlock_image(pool, "", name, "rbdsr-create-sr-%d" % i)
        for b in backends:
            b.close()
