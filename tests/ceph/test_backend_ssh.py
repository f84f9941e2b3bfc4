"""The SSH backend through a real sshd on 127.0.0.1 running the real ceph/rbd
CLIs against the dev cluster; it must answer exactly as the librbd backend."""
import os
import time
import uuid

import pytest
import rbd

from rbdsr.backends import open_backend
from rbdsr.backends.base import OWNER_META_KEY, ImageInfo
from rbdsr.backends.ssh import SSHBackend
from rbdsr.config import TargetConfig
from rbdsr.errors import AuthError, ConfigError, InUseError, NotFoundError, RBDError, UnreachableError
from tests.ceph import backendkit as kit
from tests.sshd import sshd  # noqa: F401  (fixture)

POOL_PREFIX = "h2s"  # tests/ceph/conftest.py names this module's pool

pytestmark = pytest.mark.ssh
MiB = 1 << 20


@pytest.fixture(scope="module")
def cephx_id():
    return "h2-ssh-" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def ssh_backend(ceph_cluster, sshd, pool, cephx_id):  # noqa: F811
    cfg = TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, cephx_id=cephx_id, create_cephx_user="true"))
    b = open_backend(cfg)
    yield b
    b.close()


@pytest.fixture(scope="module")
def lib_backend(ceph_cluster, ssh_backend, pool):
    # librbd with the key the SSH backend fetched: the least-privilege key is enough
    creds = ssh_backend.fetch_credentials()
    cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, pool, creds.key.reveal(), user=creds.cephx_id))
    b = open_backend(cfg)
    yield b
    b.close()


def eventually_equal(f, g, tries=10):
    """Cluster stats move while the mgr reports: compare until two reads agree."""
    for _ in range(tries):
        a, b = f(), g()
        if a == b:
            return a, b
        time.sleep(1)
    return a, b


def test_is_ssh(ssh_backend):
    assert isinstance(ssh_backend, SSHBackend)


def test_fetched_user_has_least_caps(ssh_backend, admin, pool, cephx_id):
    creds = ssh_backend.fetch_credentials()
    got_id, key = creds.cephx_id, creds.key
    assert got_id == cephx_id and str(key) == "<secret>" and "SSH" in creds.source
    entry = kit.mon(admin, prefix="auth get", entity="client." + cephx_id)[0]
    assert entry["caps"] == {"mon": "profile rbd", "osd": "profile rbd pool=%s" % pool}
    assert entry["key"] == key.reveal()
    # asking again (existing user, same caps) returns the same key
    assert ssh_backend.fetch_credentials().key == key


def test_cluster_answers_identical(ssh_backend, lib_backend, ceph_cluster, pool):
    assert ssh_backend.fsid() == lib_backend.fsid() == ceph_cluster.fsid
    assert ssh_backend.monitors() == lib_backend.monitors() == [ceph_cluster.mon_addr]
    assert ssh_backend.list_pools() == lib_backend.list_pools()
    assert pool in ssh_backend.list_pools()
    a, b = eventually_equal(lambda: ssh_backend.pool_capacity(pool), lambda: lib_backend.pool_capacity(pool))
    assert a == b and a[0] >= a[1] > 0


def test_images_identical(ssh_backend, lib_backend, admin, pool, ceph_cluster):
    names = []
    for i, b in enumerate([ssh_backend, lib_backend] * 3):
        name = "same-%d-%s" % (i, uuid.uuid4().hex[:4])
        b.create_image(pool, "", name, (64 + 3 * i) * MiB)
        names.append(name)
    listed = ssh_backend.list_images(pool)
    assert listed == lib_backend.list_images(pool)
    assert set(names) <= set(i.name for i in listed)
    for name in names:
        assert ssh_backend.image_info(pool, "", name) == lib_backend.image_info(pool, "", name)
        assert ssh_backend.image_info(pool, "", name).features == ["layering"]

    # metadata written by one is read by the other
    ssh_backend.set_meta(pool, "", names[0], OWNER_META_KEY, "sr-a")
    lib_backend.set_meta(pool, "", names[1], OWNER_META_KEY, "sr-b")
    for name, want in ((names[0], "sr-a"), (names[1], "sr-b"), (names[2], None)):
        assert ssh_backend.get_meta(pool, "", name, OWNER_META_KEY) == want
        assert lib_backend.get_meta(pool, "", name, OWNER_META_KEY) == want

    # watchers and parents
    with admin.open_ioctx(pool) as io:
        with rbd.Image(io, names[2]) as img:
            a = ssh_backend.image_info(pool, "", names[2])
            assert a == lib_backend.image_info(pool, "", names[2])
            assert len(a.watchers) == 1
            img.create_snap("snap")
            img.protect_snap("snap")
        rbd.RBD().clone(io, names[2], "snap", io, names[2] + "-c", features=1)
    c = ssh_backend.image_info(pool, "", names[2] + "-c")
    assert c == lib_backend.image_info(pool, "", names[2] + "-c")
    assert c.parent == "%s/%s@snap" % (pool, names[2])
    # rbd ls -l lists snapshots too; the backend reports images only
    assert ssh_backend.list_images(pool) == lib_backend.list_images(pool)


def test_grow_and_remove_rules(ssh_backend, lib_backend, pool):
    name = "grow-" + uuid.uuid4().hex[:6]
    ssh_backend.create_image(pool, "", name, 64 * MiB)
    assert ssh_backend.grow_image(pool, "", name, 100 * MiB) == 100 * MiB
    assert lib_backend.image_info(pool, "", name).size == 100 * MiB
    with pytest.raises(ConfigError, match="refusing to shrink"):
        ssh_backend.grow_image(pool, "", name, 64 * MiB)
    with pytest.raises(InUseError):
        ssh_backend.remove_image(pool, "", name, "sr-x")
    ssh_backend.set_meta(pool, "", name, OWNER_META_KEY, "sr-x")
    ssh_backend.remove_image(pool, "", name, "sr-x")
    with pytest.raises(NotFoundError):
        lib_backend.image_info(pool, "", name)


def test_namespace_identical(ssh_backend, lib_backend, admin, pool):
    ns = "n" + uuid.uuid4().hex[:4]
    with admin.open_ioctx(pool) as io:
        rbd.RBD().namespace_create(io, ns)
    ssh_backend.create_image(pool, ns, "a", 64 * MiB)
    lib_backend.create_image(pool, ns, "b", 65 * MiB)
    assert ssh_backend.list_images(pool, ns) == lib_backend.list_images(pool, ns) == [
        ImageInfo("a", 64 * MiB), ImageInfo("b", 65 * MiB)]


def test_missing_things(ssh_backend, pool):
    with pytest.raises(NotFoundError):
        ssh_backend.image_info(pool, "", "no-such-image")
    with pytest.raises(NotFoundError):
        ssh_backend.get_meta(pool, "", "no-such-image", OWNER_META_KEY)
    with pytest.raises(NotFoundError):
        ssh_backend.pool_capacity("no-such-pool")
    with pytest.raises(NotFoundError):
        ssh_backend.list_images("no-such-pool")


def test_unknown_cephx_user_without_create(ceph_cluster, sshd, pool):  # noqa: F811
    cfg = TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, cephx_id="h2-nobody"))
    with open_backend(cfg) as b:
        with pytest.raises(NotFoundError, match="does not exist: create it"):
            b.fetch_credentials()


def test_known_hosts(ceph_cluster, sshd, pool, tmp_path):  # noqa: F811
    d = sshd.dconf(ceph_cluster, pool)
    del d["ssh_host_key"]
    # the file that holds the right key: accepted
    with open_backend(TargetConfig.from_dconf(dict(d, ssh_known_hosts=sshd.known_hosts))) as b:
        assert b.fsid() == ceph_cluster.fsid
    # host absent from known_hosts: refused, never added
    empty = tmp_path / "kh_empty"
    empty.write_text("")
    with pytest.raises(AuthError, match="is unknown"):
        open_backend(TargetConfig.from_dconf(dict(d, ssh_known_hosts=str(empty))))
    assert empty.read_text() == ""
    # a different key on record for that host: refused
    other = tmp_path / "kh_other"
    os.system("ssh-keygen -q -t ed25519 -N '' -f %s >/dev/null" % (tmp_path / "k"))
    blob = (tmp_path / "k.pub").read_text().split()[:2]
    other.write_text("[127.0.0.1]:%d %s %s\n" % (sshd.port, blob[0], blob[1]))
    with pytest.raises(AuthError, match="does not match known_hosts"):
        open_backend(TargetConfig.from_dconf(dict(d, ssh_known_hosts=str(other))))


def test_wrong_pin_refused(ceph_cluster, sshd, pool):  # noqa: F811
    wrong = "SHA256:" + "B" * 43
    with pytest.raises(AuthError) as e:
        open_backend(TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, ssh_host_key=wrong)))
    assert "not the pinned" in str(e.value) and sshd.fingerprint in str(e.value)
    assert e.value.key == "ISCSILogin"


def test_wrong_password(ceph_cluster, sshd, pool):  # noqa: F811
    with pytest.raises(AuthError, match="refused") as e:
        open_backend(TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, chappassword="wrong-pw-123")))
    assert "wrong-pw-123" not in str(e.value)


def test_no_sudo_is_a_clear_error(ceph_cluster, sshd, pool):  # noqa: F811
    # without sudo the test user cannot read any keyring: Ceph refuses, cleanly
    with open_backend(TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, ssh_sudo="false",
                                                         timeout="5"))) as b:
        with pytest.raises(RBDError) as e:
            b.fsid()
    assert isinstance(e.value, (AuthError, UnreachableError)), repr(e.value)


def test_ssh_port_closed_is_unreachable(ceph_cluster, sshd, pool):  # noqa: F811
    t0 = time.monotonic()
    with pytest.raises(UnreachableError, match="cannot connect"):
        open_backend(TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, ssh_port="1", timeout="3")))
    assert time.monotonic() - t0 < 5


def test_ssh_host_blackhole_returns_within_timeout(ceph_cluster, sshd, pool):  # noqa: F811
    t0 = time.monotonic()
    with pytest.raises(UnreachableError):
        open_backend(TargetConfig.from_dconf(sshd.dconf(ceph_cluster, pool, ssh_host="192.0.2.1",
                                                        timeout="2")))
    assert time.monotonic() - t0 < 6


def test_remote_command_is_bounded(ceph_cluster, sshd, pool):  # noqa: F811
    # the sshd is fine but the remote command hangs: the remote `timeout` and
    # our deadline bound it
    sshd_conf = sshd.dconf(ceph_cluster, pool, timeout="3", ssh_sudo="false")
    with open_backend(TargetConfig.from_dconf(sshd_conf)) as b:
        t0 = time.monotonic()
        b._conn.run(["true"])  # a plain command works
        with pytest.raises(UnreachableError):
            b._run("sleep", ["30"], "sleeping")
        assert time.monotonic() - t0 < 10


def test_create_user_for_a_namespace(ceph_cluster, sshd, admin, pool):  # noqa: F811
    ns = "cap" + uuid.uuid4().hex[:4]
    with admin.open_ioctx(pool) as io:
        rbd.RBD().namespace_create(io, ns)
    cephx_id = "h2-ns-" + uuid.uuid4().hex[:4]
    d = sshd.dconf(ceph_cluster, "%s/%s" % (pool, ns), cephx_id=cephx_id, create_cephx_user="true")
    with open_backend(TargetConfig.from_dconf(d)) as b:
        key = b.fetch_credentials().key
    caps = kit.mon(admin, prefix="auth get", entity="client." + cephx_id)[0]["caps"]
    assert caps == {"mon": "profile rbd", "osd": "profile rbd pool=%s namespace=%s" % (pool, ns)}
    # that key works in its namespace and nowhere else in the pool
    cfg = TargetConfig.from_dconf(kit.dconf(ceph_cluster, "%s/%s" % (pool, ns), key.reveal(), user=cephx_id))
    with open_backend(cfg) as lib:
        lib.create_image(pool, ns, "mine", 64 * MiB)
        assert [i.name for i in lib.list_images(pool, ns)] == ["mine"]
        with pytest.raises(AuthError):
            lib.create_image(pool, "", "not-mine", 64 * MiB)


@pytest.mark.parametrize("granted", [
    ["mon", "allow *", "osd", "allow *"],                          # admin-like
    ["mon", "profile rbd", "osd", "allow rwx"],
    ["mon", "profile rbd", "osd", "profile rbd pool=some-other-pool"],
])
def test_user_with_more_than_least_privilege_is_refused(ceph_cluster, sshd, admin, pool, granted):  # noqa: F811
    cephx_id = "h12-caps-" + uuid.uuid4().hex[:6]
    entry = kit.mon(admin, prefix="auth get-or-create", entity="client." + cephx_id, caps=granted)
    key = entry[0]["key"]
    try:
        # with create_cephx_user too: an existing user is never widened or trusted blindly
        d = sshd.dconf(ceph_cluster, pool, cephx_id=cephx_id, create_cephx_user="true")
        with open_backend(TargetConfig.from_dconf(d)) as b:
            with pytest.raises(AuthError) as e:
                b.fetch_credentials()
        assert "refusing the key of client.%s" % cephx_id in str(e.value)
        assert key not in str(e.value) and "profile rbd pool=%s" % pool in str(e.value)
        # and its caps are as they were
        assert kit.mon(admin, prefix="auth get", entity="client." + cephx_id)[0]["caps"] == \
            dict(zip(granted[::2], granted[1::2]))
    finally:
        kit.mon(admin, prefix="auth rm", entity="client." + cephx_id)
