"""Bad input, end to end: device-config -> TargetConfig -> backend -> Ceph.

Each row is an invalid device-config or a hostile value, with the exact error
class, sm key and message fragment it must give; none may be a traceback
(anything but an RBDError fails the row) and none may change a pool or image
(the admin-side listing before and after each row is compared)."""
import time
import uuid

import pytest

from rbdsr.backends import open_backend
from rbdsr.backends.base import OWNER_META_KEY
from rbdsr.config import TargetConfig
from rbdsr.errors import AuthError, ConfigError, InUseError, NotFoundError, RBDError, UnreachableError
from rbdsr.secret import make_cephx_key
from tests.ceph import backendkit as kit
from tests.sshd import sshd  # noqa: F401  (fixture)

pytestmark = pytest.mark.ssh  # also needs the sshd helper
MiB = 1 << 20
WRONG_KEY = make_cephx_key(b"not-the-real-key")


@pytest.fixture(scope="module")
def env(ceph_cluster, sshd):  # noqa: F811
    admin = kit.admin(ceph_cluster)
    pool = kit.make_pool(admin, "h2b")
    cephx_id = "h2-bad-" + uuid.uuid4().hex[:6]
    key = kit.make_user(admin, cephx_id, pool)
    good = kit.dconf(ceph_cluster, pool, key, user=cephx_id, SCSIid="existing", timeout="5")
    with open_backend(TargetConfig.from_dconf(good)) as b:
        b.create_image(pool, "", "existing", 64 * MiB)
        b.set_meta(pool, "", "existing", OWNER_META_KEY, "owner-sr")
    e = {"sshd_port": sshd.port, "mon_v2_port": ceph_cluster.info["mon_v2_port"], "cluster": ceph_cluster, "admin": admin, "pool": pool, "id": cephx_id, "key": key, "good": good,
         "ssh": sshd.dconf(ceph_cluster, pool, cephx_id=cephx_id, SCSIid="existing", timeout="5")}
    yield e
    kit.remove_pool(admin, pool)
    admin.shutdown()


def g(**over):
    """A row's device-config: the good cephx one with changes (None removes a key)."""
    return ("good", over)


def s(**over):
    return ("ssh", over)


# op: what the row does after opening the backend
def op_list(b, cfg):
    return b.list_images(cfg.pool, cfg.namespace)


def op_info(b, cfg):
    return b.image_info(cfg.pool, cfg.namespace, cfg.image)


def op_create(b, cfg):
    return b.create_image(cfg.pool, cfg.namespace, cfg.image, cfg.size or 64 * MiB)


def op_shrink(b, cfg):
    return b.grow_image(cfg.pool, cfg.namespace, cfg.image, 32 * MiB)


def op_remove_other_owner(b, cfg):
    return b.remove_image(cfg.pool, cfg.namespace, cfg.image, "another-sr")


def op_remove_no_owner(b, cfg):
    return b.remove_image(cfg.pool, cfg.namespace, cfg.image, None)


def op_creds(b, cfg):
    from rbdsr.credentials import resolve
    return resolve(cfg, getattr(b, "fetch_credentials", None))


def direct(method, *args):
    """An op calling a backend method with hostile arguments directly (a caller bug)."""
    def op(b, cfg):
        return getattr(b, method)(*[cfg.pool if a == "POOL" else a for a in args])
    op.__name__ = "direct_" + method
    return op


SHELL = "x;touch h2-pwned"
ROWS = [
    # config errors (device-config as typed in the wizard or xe)
    ("target-missing", g(target=None), op_list, ConfigError, "ConfigTargetMissing", "no Ceph monitor"),
    ("target-shell", g(target="127.0.0.1;reboot"), op_list, ConfigError, "ConfigTargetMissing", "host"),
    ("target-subst", g(target="$(reboot)"), op_list, ConfigError, "ConfigTargetMissing", "not a valid host"),
    ("target-space", g(target="127.0.0.1 6789"), op_list, ConfigError, "ConfigTargetMissing", "not a valid host"),
    ("target-unicode", g(target="mön"), op_list, ConfigError, "ConfigTargetMissing", "not a valid host"),
    ("target-port-abc", g(target="127.0.0.1:abc"), op_list, ConfigError, "ConfigTargetMissing", "not a number"),
    ("port-abc", g(port="abc"), op_list, ConfigError, "ISCSIPort", "does not select RBDSR"),
    ("port-0", g(port="0"), op_list, ConfigError, "ISCSIPort", "does not select RBDSR"),
    ("port-16789", g(port="16789"), op_list, ConfigError, "ISCSIPort", "does not select RBDSR"),
    ("pool-empty", g(targetIQN=""), op_list, ConfigError, "ConfigTargetIQNMissing", "no pool"),
    ("pool-shell", g(targetIQN="rbd;reboot"), op_list, ConfigError, "ConfigTargetIQNMissing", "may only use"),
    ("pool-backtick", g(targetIQN="`id`"), op_list, ConfigError, "ConfigTargetIQNMissing", "may only use"),
    ("pool-space", g(targetIQN="my pool"), op_list, ConfigError, "ConfigTargetIQNMissing", "may only use"),
    ("pool-unicode", g(targetIQN="pööl"), op_list, ConfigError, "ConfigTargetIQNMissing", "may only use"),
    ("pool-long", g(targetIQN="p" * 300), op_list, ConfigError, "ConfigTargetIQNMissing", "longer than"),
    ("ns-hostile", g(targetIQN="rbd/ns&&id"), op_list, ConfigError, "ConfigTargetIQNMissing", "may only use"),
    ("image-shell", g(SCSIid=SHELL), op_create, ConfigError, "ConfigSCSIid", "may only use"),
    ("image-pipe", g(SCSIid="a|b"), op_create, ConfigError, "ConfigSCSIid", "may only use"),
    ("image-redirect", g(SCSIid="a>b"), op_create, ConfigError, "ConfigSCSIid", "may only use"),
    ("image-newline", g(SCSIid="a\nb"), op_create, ConfigError, "ConfigSCSIid", "control characters"),
    ("image-snap", g(SCSIid="existing@snap"), op_info, ConfigError, "ConfigSCSIid", "'/' or '@'"),
    ("image-long", g(SCSIid="i" * 200), op_create, ConfigError, "ConfigSCSIid", "longer than"),
    ("image-unicode", g(SCSIid="ïmage"), op_create, ConfigError, "ConfigSCSIid", "may only use"),
    ("key-garbage", g(chappassword="not a key"), op_list, ConfigError, "InvalidArg", "neither a cephx key"),
    ("key-bad-b64", g(auth="cephx", chappassword="A" * 40), op_list, ConfigError, "InvalidArg", "not a cephx key"),
    ("user-hostile", g(chapuser="admin,secret=x"), op_list, ConfigError, "InvalidArg", "cephx id"),
    ("secret-uuid-bad", g(chappassword=None, chappassword_secret="../../etc"), op_list, ConfigError,
     "InvalidSecret", "not a secret uuid"),
    ("size-abc", g(size="lots"), op_create, ConfigError, "InvalidArg", "not a size"),
    ("timeout-0", g(timeout="0"), op_list, ConfigError, "InvalidArg", "outside 1-600"),
    ("conf-relative", g(ceph_conf="ceph.conf"), op_list, ConfigError, "InvalidArg", "absolute path"),
    ("ssh-admin", s(cephx_id="admin"), op_creds, ConfigError, "InvalidArg", "never fetches the admin key"),
    ("ssh-user-shell", s(chapuser="u;id"), op_list, ConfigError, "InvalidArg", "not a valid login name"),
    ("ssh-fp-bad", s(ssh_host_key="SHA256:short"), op_list, ConfigError, "InvalidArg", "not a fingerprint"),
    # the cluster says no
    ("mon-unreachable", g(target="127.0.0.1:1", timeout="3"), op_list, UnreachableError, "ISCSITarget",
     "did not answer"),
    ("mon-blackhole", g(target="192.0.2.1", timeout="3"), op_list, UnreachableError, "ISCSITarget",
     "did not answer"),
    ("mon-is-sshd", g(target="127.0.0.1:{sshd_port}", timeout="3"), op_list, UnreachableError, "ISCSITarget",
     "did not answer"),
    ("mon-v2-port", g(target="127.0.0.1:{mon_v2_port}", timeout="3"), op_list, UnreachableError,
     "ISCSITarget", "did not answer"),
    ("name-unresolvable", g(target="no-such-mon.invalid"), op_list, ConfigError, "DNSError", "does not resolve"),
    ("wrong-key", g(chappassword=WRONG_KEY), op_list, AuthError, "ISCSILogin", "permission denied"),
    ("unknown-user", g(chapuser="h2-nobody"), op_list, AuthError, "ISCSILogin", "permission denied"),
    ("keyring-missing", g(chappassword="/nonexistent/keyring"), op_creds, ConfigError, "InvalidArg",
     "cannot read keyring"),
    ("pool-missing", g(targetIQN="no-such-pool"), op_list, NotFoundError, "SMGeneral", "does not exist"),
    ("pool-not-allowed", g(targetIQN="rbd"), op_create, AuthError, "ISCSILogin", "permission denied"),
    ("image-missing", g(SCSIid="no-such-image"), op_info, NotFoundError, "SMGeneral", "does not exist"),
    ("image-exists", g(), op_create, RBDError, "SMGeneral", "already exists"),
    ("shrink", g(), op_shrink, ConfigError, "InvalidArg", "refusing to shrink"),
    ("remove-not-ours", g(), op_remove_other_owner, InUseError, "SRInUse", "not tagged"),
    ("remove-no-owner", g(), op_remove_no_owner, InUseError, "SRInUse", "no owner given"),
    ("direct-image-shell", g(), direct("create_image", "POOL", "", SHELL, 64 * MiB), ConfigError,
     "ConfigSCSIid", "may only use"),
    ("direct-size-0", g(), direct("create_image", "POOL", "", "zero", 0), ConfigError, "InvalidArg",
     "positive number"),
    ("direct-meta-key", g(), direct("set_meta", "POOL", "", "existing", "k;id", "v"), ConfigError,
     "InvalidArg", "not allowed"),
    ("direct-meta-value", g(), direct("set_meta", "POOL", "", "existing", OWNER_META_KEY, "a\nb"), ConfigError,
     "InvalidArg", "printable"),
    ("direct-pool-shell", g(), direct("list_images", "$(id)"), ConfigError, "ConfigTargetIQNMissing",
     "may only use"),
    # over SSH
    ("ssh-wrong-host-key", s(ssh_host_key="SHA256:" + "Q" * 43), op_list, AuthError, "ISCSILogin",
     "not the pinned"),
    ("ssh-wrong-password", s(chappassword="wrong-password"), op_list, AuthError, "ISCSILogin", "refused"),
    ("ssh-port-closed", s(ssh_port="1"), op_list, UnreachableError, "ISCSITarget", "cannot connect"),
    ("ssh-unknown-user", s(cephx_id="h2-nobody"), op_creds, NotFoundError, "SMGeneral", "does not exist"),
    ("ssh-image-shell", s(), direct("image_info", "POOL", "", SHELL), ConfigError, "ConfigSCSIid",
     "may only use"),
    ("ssh-image-missing", s(SCSIid="no-such-image"), op_info, NotFoundError, "SMGeneral", "not found"),
    ("ssh-pool-missing", s(targetIQN="no-such-pool"), op_list, NotFoundError, "SMGeneral", "not found"),
    ("ssh-shrink", s(), op_shrink, ConfigError, "InvalidArg", "refusing to shrink"),
    ("ssh-remove-not-ours", s(), op_remove_other_owner, InUseError, "SRInUse", "not tagged"),
]


def test_table_size():
    assert len(ROWS) >= 40 and len(set(r[0] for r in ROWS)) == len(ROWS)


def build(env, spec):
    kind, over = spec
    d = dict(env[kind])
    if kind == "good" and "targetIQN" not in over:
        d["targetIQN"] = env["pool"]
    for k, v in over.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v.format(**env) if "{" in v else v
    return d


@pytest.mark.parametrize("name,spec,op,exc,key,fragment", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(env, name, spec, op, exc, key, fragment):
    before = kit.snapshot(env["admin"])
    dconf = build(env, spec)
    t0 = time.monotonic()
    with pytest.raises(RBDError) as e:  # anything else (KeyError, ...) fails the row
        cfg = TargetConfig.from_dconf(dconf)
        with open_backend(cfg) as b:
            op(b, cfg)
    took = time.monotonic() - t0
    assert isinstance(e.value, exc), repr(e.value)
    assert e.value.key == key, str(e.value)
    assert fragment in str(e.value), str(e.value)
    assert env["key"] not in str(e.value) and "wrong-password" not in str(e.value)
    assert took < 15, took  # every row returns, bounded by its timeout
    assert kit.snapshot(env["admin"]) == before
