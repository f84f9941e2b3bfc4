"""block-rbd's cluster-wide claims (RBD advisory locks) on the real dev cluster.

Two "hosts" are two separate librados clients with different host ids, as two
dom0s would be. Releases always go through a *new* connection, as the remove
hotplug run is a new process. The script-level cases run scripts/block-rbd as
a subprocess (xenstore is the file-backed stand-in of tests/fakexenstore, as no
xenstored runs without a Xen hypervisor); they stop before any kernel mapping
(this host's kernel has no rbd module) except the rollback case, which relies
on exactly that map failure.
"""
import json
import os
import subprocess
import sys
import uuid

import pytest
import rbd

from rbdsr.errors import InUseError, NotFoundError
from rbdsr.hotplug import claims
from rbdsr.credentials import from_keyring
from rbdsr.hotplug.cluster import Cluster
from rbdsr.hotplug.clone import ensure_clone
from rbdsr.hotplug.target import ImageRef, parse_target
from tests import fakexenstore
from tests.dom0files import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "block-rbd")
MiB = 1 << 20
VBD_A = "/local/domain/0/backend/vbd/11/51712"
VBD_B = "/local/domain/0/backend/vbd/12/51712"


class Host(object):
    """One dom0's view: its own librados client and host id."""

    def __init__(self, ceph, name):
        self.ceph = ceph
        self.name = name

    def connect(self):
        return Cluster(from_keyring("admin", self.ceph.admin_keyring_path), self.ceph.conf_path, None, 30)

    def _with_image(self, image, fn):
        with self.connect() as c:
            ioctx = c.ioctx(self.ceph.pool)
            try:
                with c.rbd.Image(ioctx, image) as img:
                    return fn(c, img)
            finally:
                ioctx.close()

    def cookie(self, vbd):
        return claims.make_cookie(self.name, vbd)

    def claim(self, image, write, vbd=VBD_A):
        return self._with_image(image, lambda c, img: claims.acquire(
            img, c.rbd, ImageRef(self.ceph.pool, "", image), write, self.cookie(vbd)))

    def release(self, image, vbd=VBD_A):
        return self._with_image(image, lambda c, img: claims.release(img, c.rbd, self.cookie(vbd)))

    def claims(self, image):
        return self._with_image(image, lambda c, img: claims.list_claims(img))


@pytest.fixture
def image(ceph_cluster):
    name = "blockrbd-" + uuid.uuid4().hex[:8]
    cl = ceph_cluster.rados_client()
    ioctx = cl.open_ioctx(ceph_cluster.pool)
    rbd.RBD().create(ioctx, name, 64 * MiB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
    yield name
    try:
        with rbd.Image(ioctx, name) as img:
            for _client, _cookie, _addr in (img.list_lockers() or {}).get("lockers", []):
                img.break_lock(_client, _cookie)
            for s in list(img.list_snaps()):
                if img.is_protected_snap(s["name"]):
                    img.unprotect_snap(s["name"])
                img.remove_snap(s["name"])
        rbd.RBD().remove(ioctx, name)
    finally:
        ioctx.close()
        cl.shutdown()


@pytest.fixture
def hosts(ceph_cluster):
    return Host(ceph_cluster, "xen-a"), Host(ceph_cluster, "xen-b")


def test_writer_excludes_writers_and_readers_on_other_hosts(image, hosts):
    a, b = hosts
    assert a.claim(image, write=True) is True
    with pytest.raises(InUseError) as ei:
        b.claim(image, write=True, vbd=VBD_B)
    msg = str(ei.value)
    assert "is claimed by host xen-a (vbd %s) for writing" % VBD_A in msg
    assert "block-rbd break-claim" in msg and "--host" in msg
    assert ei.value.key == "SRInUse"
    with pytest.raises(InUseError):
        b.claim(image, write=False, vbd=VBD_B)
    # the same host, another vbd: also refused (two domUs writing one image)
    with pytest.raises(InUseError):
        a.claim(image, write=True, vbd=VBD_B)
    [held] = b.claims(image)
    assert (held.host, held.vbd, held.exclusive, held.cookie) == ("xen-a", VBD_A, True, a.cookie(VBD_A))


def blocklist_entries(ceph):
    """Number of entries in the OSD blocklist (Pacific prints two JSON lists back to back)."""
    cl = ceph.rados_client()
    try:
        ret, out, err = cl.mon_command(json.dumps({"prefix": "osd blocklist ls", "format": "json"}), b"",
                                       timeout=30)
    finally:
        cl.shutdown()
    assert ret == 0, err
    return out.decode().count('"addr"')


def test_release_from_a_new_client_frees_the_image(image, hosts, ceph_cluster):
    a, b = hosts
    before = blocklist_entries(ceph_cluster)
    a.claim(image, write=True)
    assert a.release(image) == 1           # a different librados client than the one that locked
    assert a.claims(image) == []
    assert a.release(image) == 0           # idempotent
    assert b.claim(image, write=True, vbd=VBD_B) is True
    # releasing never blocklists the (exited) claimant's client
    assert blocklist_entries(ceph_cluster) == before


def test_claims_work_on_images_with_exclusive_lock(hosts, ceph_cluster):
    # the advisory claim is independent of the exclusive-lock feature krbd uses
    a, b = hosts
    name = "blockrbd-el-" + uuid.uuid4().hex[:8]
    cl = ceph_cluster.rados_client()
    ioctx = cl.open_ioctx(ceph_cluster.pool)
    try:
        rbd.RBD().create(ioctx, name, 64 * MiB, old_format=False,
                         features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK)
        assert a.claim(name, write=True) is True
        with pytest.raises(InUseError):
            b.claim(name, write=True, vbd=VBD_B)
        assert a.release(name) == 1
    finally:
        rbd.RBD().remove(ioctx, name)
        ioctx.close()
        cl.shutdown()


def test_claim_is_idempotent_for_the_same_vbd(image, hosts):
    a, _ = hosts
    assert a.claim(image, write=True) is True
    assert a.claim(image, write=True) is False   # a re-run add of the same vbd
    assert len(a.claims(image)) == 1


def test_readers_share_and_keep_writers_out(image, hosts, ceph_cluster):
    a, b = hosts
    c = Host(ceph_cluster, "xen-c")
    assert a.claim(image, write=False) is True
    assert b.claim(image, write=False, vbd=VBD_B) is True
    held = a.claims(image)
    assert sorted(h.host for h in held) == ["xen-a", "xen-b"]
    assert all(not h.exclusive and h.tag == claims.TAG for h in held)
    with pytest.raises(InUseError) as ei:
        c.claim(image, write=True)
    assert "xen-a" in str(ei.value) and "xen-b" in str(ei.value) and "for reading" in str(ei.value)
    a.release(image)
    with pytest.raises(InUseError):
        c.claim(image, write=True)
    b.release(image, vbd=VBD_B)
    assert c.claim(image, write=True) is True


def test_break_claims_only_breaks_what_is_selected(image, hosts, ceph_cluster):
    a, b = hosts
    a.claim(image, write=False)
    b.claim(image, write=False, vbd=VBD_B)
    with a.connect() as c:
        ioctx = c.ioctx(ceph_cluster.pool)
        with c.rbd.Image(ioctx, image) as img:
            broken = claims.break_claims(img, c.rbd, lambda cl: cl.host == "xen-b")
        ioctx.close()
    assert [cl.host for cl in broken] == ["xen-b"]
    assert [cl.host for cl in a.claims(image)] == ["xen-a"]


def test_foreign_locks_are_respected_and_never_broken(image, hosts, ceph_cluster):
    a, _ = hosts
    cl = ceph_cluster.rados_client()
    ioctx = cl.open_ioctx(ceph_cluster.pool)
    try:
        with rbd.Image(ioctx, image) as img:
            img.lock_exclusive("manual-maintenance")   # like `rbd lock add`
        with pytest.raises(InUseError) as ei:
            a.claim(image, write=False)
        assert "a non-block-rbd lock (cookie 'manual-maintenance'" in str(ei.value)
        with a.connect() as c:
            io2 = c.ioctx(ceph_cluster.pool)
            with c.rbd.Image(io2, image) as img:
                assert claims.break_claims(img, c.rbd, lambda x: True) == []
            io2.close()
        assert [h.cookie for h in a.claims(image)] == ["manual-maintenance"]
    finally:
        ioctx.close()
        cl.shutdown()


def test_claim_on_missing_image(hosts, ceph_cluster):
    a, _ = hosts
    with a.connect() as c:
        ioctx = c.ioctx(ceph_cluster.pool)
        with pytest.raises(rbd.ImageNotFound):
            c.rbd.Image(ioctx, "no-such-image-" + uuid.uuid4().hex[:6])
        ioctx.close()
        with pytest.raises(NotFoundError):
            c.ioctx("no-such-pool-" + uuid.uuid4().hex[:6])


def test_clone_from_golden_snapshot(image, hosts, ceph_cluster):
    a, _ = hosts
    cl = ceph_cluster.rados_client()
    ioctx = cl.open_ioctx(ceph_cluster.pool)
    child = image + "-clone"
    try:
        with rbd.Image(ioctx, image) as img:
            img.write(b"golden!" * 10, 0)
            img.create_snap("base")
            img.protect_snap("base")
        target = parse_target("rbd:%s:%s,clone-from=%s:%s@base" % (ceph_cluster.pool, child, ceph_cluster.pool,
                                                                   image))
        log = _ListLog()
        with a.connect() as c:
            assert ensure_clone(c, target, log) is True
            assert ensure_clone(c, target, log) is False     # exists now: untouched
        with rbd.Image(ioctx, child, read_only=True) as img:
            assert img.read(0, 7) == b"golden!"
            parent = img.get_parent_image_spec()
            assert (parent["pool_name"], parent["image_name"], parent["snap_name"]) == (
                ceph_cluster.pool, image, "base")
        assert log.lines == ["created %s/%s as a clone of %s/%s@base" % (ceph_cluster.pool, child,
                                                                         ceph_cluster.pool, image)]
        missing = parse_target("rbd:%s:%s-x,clone-from=%s:%s@nosnap" % (ceph_cluster.pool, child,
                                                                         ceph_cluster.pool, image))
        with a.connect() as c:
            with pytest.raises(NotFoundError) as ei:
                ensure_clone(c, missing, log)
        assert "golden image or snapshot does not exist" in str(ei.value)
    finally:
        try:
            rbd.RBD().remove(ioctx, child)
        except rbd.ImageNotFound:
            pass
        ioctx.close()
        cl.shutdown()


class _ListLog(object):
    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)

    warn = error = info


# ------------------------------------------------------------------ the script

class Dom0(object):
    """scripts/block-rbd as one host runs it (its host id, its xenstore)."""

    def __init__(self, tmp_path, ceph, name):
        self.ceph = ceph
        self.db = str(tmp_path / ("xs-%s.json" % name))
        self.env = fakexenstore.install(str(tmp_path / ("bin-" + name)), self.db)
        self.env["BLOCK_RBD_HOST_ID"] = name
        self.env["BLOCK_RBD_LOCK"] = str(tmp_path / ("lock-" + name))

    def target(self, image, extra=""):
        return "rbd:%s:%s,conf=%s%s" % (self.ceph.pool, image, self.ceph.conf_path, extra)

    def run(self, *args, **kw):
        env = dict(self.env)
        env.update(kw.get("env", {}))
        return subprocess.run([sys.executable, SCRIPT] + list(args), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=180)

    def vbd(self, vbd, params, mode):
        subprocess.check_call(["xenstore-write", vbd + "/params", params, vbd + "/mode", mode], env=self.env)

    def store(self):
        return fakexenstore.load(self.db)


def test_script_add_refused_when_another_host_writes(image, hosts, tmp_path, ceph_cluster):
    a, _ = hosts
    a.claim(image, write=True)
    b = Dom0(tmp_path, ceph_cluster, "xen-b")
    b.vbd(VBD_B, b.target(image), "w")
    p = b.run("add", env={"XENBUS_PATH": VBD_B})
    st = b.store()
    assert p.returncode == 1, p.stderr
    assert st[VBD_B + "/hotplug-status"] == "error"
    err = st[VBD_B + "/hotplug-error"]
    assert "add failed: %s/%s is claimed by host xen-a (vbd %s) for writing" % (ceph_cluster.pool, image, VBD_A) \
        in err
    assert VBD_B + "/physical-device" not in st
    assert ceph_cluster.admin_key not in err + p.stderr
    # the holder is untouched
    assert [h.host for h in a.claims(image)] == ["xen-a"]


def test_script_add_releases_its_claim_when_the_map_fails(image, hosts, tmp_path, ceph_cluster):
    # This host's kernel has no rbd module: the claim is taken, the map fails,
    # and the rollback must leave no claim behind.
    a, _ = hosts
    b = Dom0(tmp_path, ceph_cluster, "xen-b")
    b.vbd(VBD_B, b.target(image, ",timeout=20"), "w")
    p = b.run("add", env={"XENBUS_PATH": VBD_B})
    assert p.returncode == 1
    err = b.store()[VBD_B + "/hotplug-error"]
    assert "rbd" in err and "module" in err, err
    assert "claimed %s/%s for writing" % (ceph_cluster.pool, image) in p.stderr
    assert a.claims(image) == [], p.stderr
    assert ceph_cluster.admin_key not in err + p.stderr


def test_script_add_w_bang_takes_no_claim(image, hosts, tmp_path, ceph_cluster):
    a, _ = hosts
    a.claim(image, write=True)
    b = Dom0(tmp_path, ceph_cluster, "xen-b")
    b.vbd(VBD_B, b.target(image, ",timeout=20"), "w!")
    p = b.run("add", env={"XENBUS_PATH": VBD_B})
    err = b.store()[VBD_B + "/hotplug-error"]
    assert "claimed" not in err and "module" in err    # got past the claim, to the (failing) map
    assert [h.host for h in a.claims(image)] == ["xen-a"]
    assert p.returncode == 1


def test_script_claims_and_break_claim(image, hosts, tmp_path, ceph_cluster):
    a, b = hosts
    a.claim(image, write=False)
    b.claim(image, write=False, vbd=VBD_B)
    me = Dom0(tmp_path, ceph_cluster, "xen-a")
    # xen-a's xenstore still has VBD_A: its claim is live, not stale
    me.vbd(VBD_A, me.target(image), "r")
    target = me.target(image)
    p = me.run("claims", target)
    assert p.returncode == 0, p.stderr
    assert "host xen-a (vbd %s) for reading" % VBD_A in p.stdout
    assert "host xen-b (vbd %s) for reading" % VBD_B in p.stdout
    p = me.run("break-claim", target)
    assert p.returncode == 0, p.stderr
    assert "no stale claims of this host (xen-a)" in p.stdout
    p = me.run("break-claim", target, "--host", "xen-b", "--dry-run")
    assert "would break host xen-b" in p.stdout
    assert len(a.claims(image)) == 2
    p = me.run("break-claim", target, "--host", "xen-b")
    assert p.returncode == 0, p.stderr
    assert "broke host xen-b (vbd %s)" % VBD_B in p.stdout
    assert "make sure host xen-b is really down" in p.stdout
    assert [h.host for h in a.claims(image)] == ["xen-a"]
    # once the vbd is gone from xen-a's xenstore, its claim is stale and breakable by default
    subprocess.check_call(["xenstore-rm", VBD_A], env=me.env)
    p = me.run("break-claim", target)
    assert "broke host xen-a (vbd %s)" % VBD_A in p.stdout
    assert a.claims(image) == []


def test_script_with_mon_and_keyring_options_only(image, hosts, tmp_path, ceph_cluster):
    # an empty ceph.conf: monitors from mon=, key from keyring=
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    a, _ = hosts
    a.claim(image, write=True)
    me = Dom0(tmp_path, ceph_cluster, "xen-b")
    target = "rbd:%s:%s,conf=%s,mon=%s,keyring=%s" % (ceph_cluster.pool, image, empty, ceph_cluster.mon_addr,
                                                       ceph_cluster.admin_keyring_path)
    p = me.run("claims", target)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "%s/%s: host xen-a (vbd %s) for writing, client %s at %s\n" % (
        ceph_cluster.pool, image, VBD_A, a.claims(image)[0].client, a.claims(image)[0].address)


def test_script_refuses_a_cluster_with_another_fsid(image, tmp_path, ceph_cluster):
    b = Dom0(tmp_path, ceph_cluster, "xen-b")
    wrong = "00000000-1111-2222-3333-444444444444"
    b.vbd(VBD_B, b.target(image, ",fsid=" + wrong), "w")
    p = b.run("add", env={"XENBUS_PATH": VBD_B})
    assert p.returncode == 1
    err = b.store()[VBD_B + "/hotplug-error"]
    assert "has fsid %s, not %s as configured" % (ceph_cluster.fsid, wrong) in err


def test_script_missing_image_is_a_clear_error(tmp_path, ceph_cluster):
    b = Dom0(tmp_path, ceph_cluster, "xen-b")
    b.vbd(VBD_B, b.target("no-such-image-" + uuid.uuid4().hex[:6]), "r")
    p = b.run("add", env={"XENBUS_PATH": VBD_B})
    assert p.returncode == 1
    err = b.store()[VBD_B + "/hotplug-error"]
    assert "add failed: image %s/no-such-image-" % ceph_cluster.pool in err and "does not exist" in err
