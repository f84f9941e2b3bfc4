"""scripts/block-rbd as libxl runs it: a subprocess with XENBUS_PATH, talking
to xenstore through xenstore-read/-write. xenstore is the file-backed stand-in
of tests/fakexenstore (the real xenstored needs a Xen hypervisor); everything
else is real: the script, its parsing, ceph.conf/keyring files, error reporting.

These cases all fail (or succeed) before any Ceph or kernel access; mapping is
covered in tests/vm/test_blockrbd.py and claims in tests/ceph.
"""
import os
import subprocess
import sys
import uuid

import pytest

from rbdsr.secret import make_cephx_key
from tests import fakexenstore
from tests.dom0files import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "block-rbd")
BE = "/local/domain/0/backend/vbd/5/51712"


class Env(object):
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.db = str(tmp_path / "xs.json")
        self.env = fakexenstore.install(str(tmp_path / "bin"), self.db)
        self.env["XENBUS_PATH"] = BE
        self.env["XENBUS_TYPE"] = "vbd"
        self.env["BLOCK_RBD_LOCK"] = str(tmp_path / "lock")
        self.env["BLOCK_RBD_HOST_ID"] = "unit-host"
        # a cephx id no default keyring location on this machine knows
        self.cephx_id = "blockrbd-unit-%s" % uuid.uuid4().hex[:8]
        self.key = make_cephx_key(os.urandom(16))
        self.keyring = str(tmp_path / ("ceph.client.%s.keyring" % self.cephx_id))
        fd = os.open(self.keyring, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("[client.%s]\n\tkey = %s\n" % (self.cephx_id, self.key))
        self.conf = str(tmp_path / "ceph.conf")
        with open(self.conf, "w") as f:
            f.write("[global]\nmon host = 127.0.0.1:6789\n")

    def target(self, spec="rbd:xen:vm-disk", **opts):
        opts.setdefault("id", self.cephx_id)
        opts.setdefault("conf", self.conf)
        opts.setdefault("keyring", self.keyring)
        return spec + "".join(",%s=%s" % (k.replace("_", "-"), v) for k, v in sorted(opts.items()) if v)

    def vbd(self, params, mode="w"):
        nodes = []
        if params is not None:
            nodes += [BE + "/params", params]
        if mode is not None:
            nodes += [BE + "/mode", mode]
        if nodes:
            subprocess.check_call(["xenstore-write"] + nodes, env=self.env)

    def run(self, *args, **kw):
        argv = [sys.executable] + list(kw.get("pyflags", [])) + [SCRIPT] + list(args)
        env = dict(self.env)
        env.update(kw.get("env", {}))
        for k in kw.get("unset", ()):
            env.pop(k, None)
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=120)
        return p

    def store(self):
        return fakexenstore.load(self.db)


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def assert_failed(env, p, fragment):
    st = env.store()
    assert p.returncode == 1, p.stderr
    assert st[BE + "/hotplug-status"] == "error"
    assert fragment in st[BE + "/hotplug-error"], st[BE + "/hotplug-error"]
    assert fragment in p.stderr
    assert BE + "/physical-device" not in st
    # the key never leaks into xenstore or the script's output
    blob = repr(st) + p.stdout + p.stderr
    assert env.key not in blob
    return st[BE + "/hotplug-error"]


def test_usage(env):
    p = env.run()
    assert p.returncode == 2 and "block-rbd add|remove" in p.stderr
    p = env.run("--help")
    assert p.returncode == 0 and "TARGET: [rbd:]POOL" in p.stdout
    p = env.run("frobnicate")
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr


def test_add_needs_xenbus_path(env):
    p = env.run("add", unset=["XENBUS_PATH"])
    assert p.returncode == 1
    assert "XENBUS_PATH is not set" in p.stderr
    assert env.store() == {}


def test_add_without_params(env):
    env.vbd(None, "w")
    p = env.run("add")
    msg = assert_failed(env, p, "no information about the target")
    assert msg.startswith("add failed: ")


def test_add_with_bad_target(env):
    env.vbd("rbd:xen:vm disk", "w")
    p = env.run("add")
    msg = assert_failed(env, p, "target: contains whitespace")
    assert "syntax: [rbd:]POOL[/NAMESPACE]:IMAGE[@SNAP]" in msg


def test_add_without_mode(env):
    env.vbd(env.target(), None)
    assert_failed(env, env.run("add"), "the vbd has no mode in xenstore")


def test_add_snapshot_read_write_is_refused(env):
    env.vbd(env.target("rbd:xen:golden@base"), "w")
    assert_failed(env, env.run("add"), "xen/golden@base is a snapshot, which is read-only: attach it with access=ro")


def test_add_without_monitors(env):
    with open(env.conf, "w") as f:
        f.write("[global]\nfsid = 4a0c1b2e-1111-2222-3333-444455556666\n")
    env.vbd(env.target(), "w")
    assert_failed(env, env.run("add"), "no Ceph monitors: set mon_host in %s or give mon=ADDR;ADDR" % env.conf)


def test_add_with_missing_conf(env):
    env.vbd(env.target(conf=str(env.tmp / "nope.conf")), "w")
    assert_failed(env, env.run("add"), "nope.conf does not exist")


def test_add_without_any_keyring(env):
    env.vbd(env.target(keyring=None), "w")
    msg = assert_failed(env, env.run("add"), "no keyring with a key for client.%s" % env.cephx_id)
    assert "/etc/ceph/ceph.client.%s.keyring" % env.cephx_id in msg
    assert "give keyring=PATH in the target" in msg


def test_add_keyring_for_another_entity(env):
    env.vbd(env.target(id="someone-else"), "w")
    assert_failed(env, env.run("add"), "has no key for client.someone-else")


def test_add_write_without_librbd_explains(env):
    # -S: the same interpreter without site-packages, i.e. a dom0 without python3-rados/rbd.
    env.vbd(env.target(), "w")
    p = env.run("add", pyflags=["-S"])
    msg = assert_failed(env, p, "needs python3-rados and python3-rbd (librbd) in dom0")
    assert "claim=no" in msg and "w!" in msg


def test_add_read_without_librbd_explains(env):
    env.vbd(env.target(), "r")
    assert_failed(env, env.run("add", pyflags=["-S"]), "needs python3-rados and python3-rbd")


def test_clone_from_without_librbd_explains(env):
    env.vbd(env.target(claim="no", clone_from="gold:base@v1"), "w")
    assert_failed(env, env.run("add", pyflags=["-S"]), "clone-from needs python3-rados and python3-rbd")


def test_remove_of_an_image_that_is_not_mapped(env):
    # nothing mapped (the image is unknown to this host's kernel), no claim recorded: success.
    env.vbd(env.target(fsid="4a0c1b2e-1111-2222-3333-444455556666"), "w")
    p = env.run("remove")
    assert p.returncode == 0, p.stderr
    assert "is not mapped" in p.stderr
    st = env.store()
    assert BE + "/hotplug-error" not in st and BE + "/hotplug-status" not in st


def test_remove_with_bad_target_reports(env):
    env.vbd("nonsense", "w")
    msg = assert_failed(env, env.run("remove"), "is not POOL[/NAMESPACE]:IMAGE")
    assert msg.startswith("remove failed: ")


def test_admin_commands_argument_errors(env):
    p = env.run("claims")
    assert p.returncode == 2 and "claims needs a TARGET" in p.stderr
    p = env.run("break-claim", "bad target")
    assert p.returncode == 1 and "target: contains whitespace" in p.stderr
    p = env.run("break-claim", env.target(), "--bogus", pyflags=["-S"])
    assert p.returncode == 1 and "unexpected argument '--bogus'" in p.stderr


def test_add_when_xenstore_is_unreachable(env):
    # the tools run but cannot reach the store (xs_open fails): exit 1, the reason on stderr
    p = env.run("add", unset=["FAKE_XENSTORE_DB"])
    assert p.returncode == 1
    assert "add failed: xenstore-" in p.stderr and "xs_open" in p.stderr
    assert "cannot report the error in xenstore" in p.stderr
