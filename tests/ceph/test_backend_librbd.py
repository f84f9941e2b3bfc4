"""The librbd backend against the real dev cluster, as a least-privilege cephx
user (mon 'profile rbd', osd 'profile rbd pool=<pool>')."""
import json
import subprocess
import time
import uuid

import pytest
import rbd

from rbdsr.backends import open_backend
from rbdsr.backends.base import OWNER_META_KEY, ImageInfo
from rbdsr.backends.librbd import LibrbdBackend
from rbdsr.config import TargetConfig
from rbdsr.errors import AuthError, ConfigError, InUseError, NotFoundError, UnreachableError
from tests.ceph import backendkit as kit

MiB = 1 << 20


@pytest.fixture(scope="module")
def user(admin, pool):
    cephx_id = "h2-lib-" + uuid.uuid4().hex[:6]
    return cephx_id, kit.make_user(admin, cephx_id, pool)


@pytest.fixture
def backend(ceph_cluster, pool, user):
    cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, pool, user[1], user=user[0]))
    b = open_backend(cfg)
    yield b
    b.close()


def rbd_cli(cluster, *args):
    out = subprocess.run(["rbd", "--conf", cluster.conf_path] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=True)
    return out.stdout


def test_open_backend_picks_librbd(backend):
    assert isinstance(backend, LibrbdBackend)


def test_cluster_facts(backend, ceph_cluster, pool):
    assert backend.fsid() == ceph_cluster.fsid
    assert backend.monitors() == [ceph_cluster.mon_addr]
    pools = backend.list_pools()
    assert pool in pools and ceph_cluster.pool in pools


def test_credentials_are_the_given_key(backend, user):
    creds = backend.creds
    assert creds.cephx_id == user[0] and creds.key.reveal() == user[1] and str(creds.key) == "<secret>"


def test_pool_capacity_and_quota(backend, admin, pool):
    total, avail = backend.pool_capacity(pool)
    assert total >= avail > 0
    kit.mon(admin, prefix="osd pool set-quota", pool=pool, field="max_bytes", val=str(5 << 30))
    try:
        total_q, avail_q = backend.pool_capacity(pool)
        assert total_q == 5 << 30 and 0 < avail_q <= 5 << 30
    finally:
        kit.mon(admin, prefix="osd pool set-quota", pool=pool, field="max_bytes", val="0")
    assert backend.pool_capacity(pool)[0] == total or backend.pool_capacity(pool)[0] > 0


def test_pool_capacity_missing_pool(backend):
    with pytest.raises(NotFoundError):
        backend.pool_capacity("no-such-pool")


def test_image_lifecycle(backend, pool, ceph_cluster):
    name = "life-" + uuid.uuid4().hex[:6]
    backend.create_image(pool, "", name, 64 * MiB)
    info = backend.image_info(pool, "", name)
    assert info == ImageInfo(name, 64 * MiB, ["layering"], None, [])
    assert ImageInfo(name, 64 * MiB) in backend.list_images(pool)
    # the CLI agrees on features
    cli = json.loads(rbd_cli(ceph_cluster, "info", "--format", "json", "%s/%s" % (pool, name)))
    assert cli["features"] == ["layering"] and cli["size"] == 64 * MiB

    assert backend.get_meta(pool, "", name, OWNER_META_KEY) is None
    backend.set_meta(pool, "", name, OWNER_META_KEY, "sr-uuid-1")
    assert backend.get_meta(pool, "", name, OWNER_META_KEY) == "sr-uuid-1"

    assert backend.grow_image(pool, "", name, 128 * MiB) == 128 * MiB
    assert backend.image_info(pool, "", name).size == 128 * MiB
    with pytest.raises(ConfigError, match="refusing to shrink"):
        backend.grow_image(pool, "", name, 64 * MiB)
    assert backend.image_info(pool, "", name).size == 128 * MiB
    assert backend.grow_image(pool, "", name, 128 * MiB) == 128 * MiB

    with pytest.raises(InUseError, match="not tagged"):
        backend.remove_image(pool, "", name, "someone-else")
    with pytest.raises(InUseError, match="no owner"):
        backend.remove_image(pool, "", name, "")
    assert name in [i.name for i in backend.list_images(pool)]
    backend.remove_image(pool, "", name, "sr-uuid-1")
    assert name not in [i.name for i in backend.list_images(pool)]
    with pytest.raises(NotFoundError):
        backend.image_info(pool, "", name)


def test_create_existing_refused(backend, pool):
    name = "dup-" + uuid.uuid4().hex[:6]
    backend.create_image(pool, "", name, 64 * MiB)
    with pytest.raises(Exception) as e:
        backend.create_image(pool, "", name, 128 * MiB)
    assert "already exists" in str(e.value)
    assert backend.image_info(pool, "", name).size == 64 * MiB


def test_list_images_matches_cli(backend, pool, ceph_cluster):
    for i in range(5):
        backend.create_image(pool, "", "ls-%d-%s" % (i, uuid.uuid4().hex[:4]), (64 + i) * MiB)
    ours = [(i.name, i.size) for i in backend.list_images(pool)]
    cli = json.loads(rbd_cli(ceph_cluster, "ls", "-l", "--format", "json", "--pool", pool))
    theirs = sorted((e["image"], e["size"]) for e in cli if "snapshot" not in e)
    assert ours == theirs and len(ours) >= 5


def test_list_empty_pool(ceph_cluster, admin):
    empty = kit.make_pool(admin, "h2e")
    try:
        cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, empty, ceph_cluster.admin_key))
        with open_backend(cfg) as b:
            assert b.list_images(empty) == []
    finally:
        kit.remove_pool(admin, empty)


def test_watchers_and_parent(backend, pool, ceph_cluster):
    base = "base-" + uuid.uuid4().hex[:6]
    backend.create_image(pool, "", base, 64 * MiB)
    other = ceph_cluster.rados_client()
    with other.open_ioctx(pool) as io:  # a second client, as another host would be
        with rbd.Image(io, base) as img:  # opened read-write: it watches the header
            watchers = backend.image_info(pool, "", base).watchers
            assert len(watchers) == 1 and watchers[0].startswith("127.0.0.1:")
            img.create_snap("s1")
            img.protect_snap("s1")
        rbd.RBD().clone(io, base, "s1", io, base + "-child", features=1)
    other.shutdown()
    assert backend.image_info(pool, "", base).watchers == []
    child = backend.image_info(pool, "", base + "-child")
    assert child.parent == "%s/%s@s1" % (pool, base)
    cli = json.loads(rbd_cli(ceph_cluster, "info", "--format", "json", "%s/%s-child" % (pool, base)))
    assert cli["parent"]["image"] == base and cli["parent"]["snapshot"] == "s1"


def test_namespace(backend, admin, pool, ceph_cluster):
    ns = "ns" + uuid.uuid4().hex[:4]
    with admin.open_ioctx(pool) as io:
        rbd.RBD().namespace_create(io, ns)
    backend.create_image(pool, ns, "in-ns", 64 * MiB)
    assert backend.list_images(pool, ns) == [ImageInfo("in-ns", 64 * MiB)]
    assert "in-ns" not in [i.name for i in backend.list_images(pool)]
    assert backend.image_info(pool, ns, "in-ns").size == 64 * MiB
    backend.set_meta(pool, ns, "in-ns", OWNER_META_KEY, "x")
    assert backend.get_meta(pool, ns, "in-ns", OWNER_META_KEY) == "x"


def test_missing_things(backend, pool):
    with pytest.raises(NotFoundError, match="pool no-such-pool does not exist"):
        backend.list_images("no-such-pool")
    with pytest.raises(NotFoundError, match="does not exist"):
        backend.image_info(pool, "", "no-such-image")
    with pytest.raises(NotFoundError):
        backend.get_meta(pool, "", "no-such-image", OWNER_META_KEY)
    with pytest.raises(NotFoundError):
        backend.grow_image(pool, "", "no-such-image", 128 * MiB)


def test_caps_limit_is_reported(backend, ceph_cluster):
    # the least-privilege user may not touch another pool: a clean AuthError
    with pytest.raises(AuthError, match="permission denied"):
        backend.create_image(ceph_cluster.pool, "", "h2-not-allowed", 64 * MiB)


def test_admin_keyring_path(ceph_cluster, pool):
    cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, pool, ceph_cluster.admin_keyring_path))
    with open_backend(cfg) as b:
        assert b.fsid() == ceph_cluster.fsid
        assert b.creds.key.reveal() == ceph_cluster.admin_key


def test_wrong_key_is_auth_error(ceph_cluster, pool, user):
    from rbdsr.secret import make_cephx_key
    cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, pool, make_cephx_key(b"w" * 16), user=user[0]))
    t0 = time.monotonic()
    with pytest.raises(AuthError) as e:
        open_backend(cfg)
    assert time.monotonic() - t0 < 10
    assert e.value.key == "ISCSILogin"


@pytest.mark.parametrize("target", ["127.0.0.1:1", "192.0.2.1:6789"])
def test_unreachable_monitor_returns_within_timeout(ceph_cluster, pool, user, target):
    cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, pool, user[1], user=user[0], target=target,
                                            timeout="3"))
    t0 = time.monotonic()
    with pytest.raises(UnreachableError) as e:
        open_backend(cfg)
    took = time.monotonic() - t0
    assert 2.5 <= took < 3 * 3, took  # honours the timeout and returns
    assert e.value.key == "ISCSITarget" and target in str(e.value)


def test_hostname_monitor_is_resolved(ceph_cluster, pool, user):
    cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, pool, user[1], user=user[0],
                                            target="localhost:%d" % ceph_cluster.mon_port))
    with open_backend(cfg) as b:
        assert b.fsid() == ceph_cluster.fsid
    assert ("127.0.0.1", ceph_cluster.mon_port) in cfg.resolved


def test_ceph_answers_are_validated():
    from rbdsr.backends import base
    from rbdsr.errors import CephError
    for bad in ({}, {"mons": "x"}, {"mons": [{"public_addrs": {"addrvec": [{"type": 1}]}}]}):
        with pytest.raises(CephError):
            base.parse_mon_dump(bad)
    with pytest.raises(CephError):
        base.parse_capacity({"pools": [{"name": "p", "stats": {"stored": "1"}}]}, {}, "p")
    with pytest.raises(CephError):
        base.load_json("not json", "x")
