"""Parsing Ceph's JSON answers (shapes as Ceph 16 prints them) and the shared
backend policy; plus the SSH pieces that need no server."""
import base64
import hashlib

import pytest

from rbdsr.backends import base
from rbdsr.errors import CephError, ConfigError, InUseError, NotFoundError

MON_DUMP = {"epoch": 1, "fsid": "f", "mons": [
    {"rank": 0, "name": "a", "public_addrs": {"addrvec": [
        {"type": "v2", "addr": "10.0.0.1:3300", "nonce": 0}, {"type": "v1", "addr": "10.0.0.1:6789", "nonce": 0}]}},
    {"rank": 1, "name": "b", "public_addrs": {"addrvec": [{"type": "v1", "addr": "10.0.0.2:6789", "nonce": 0}]}},
]}


def test_mon_dump_v1_only():
    assert base.parse_mon_dump(MON_DUMP) == ["10.0.0.1:6789", "10.0.0.2:6789"]
    with pytest.raises(CephError, match="no msgr v1"):
        base.parse_mon_dump({"mons": [{"public_addrs": {"addrvec": [{"type": "v2", "addr": "x:3300"}]}}]})


@pytest.mark.parametrize("bad", [None, [], {}, {"mons": {}}, {"mons": [{}]}, {"mons": [{"public_addrs": []}]},
                                 {"mons": [{"public_addrs": {"addrvec": [{"type": "v1"}]}}]}])
def test_mon_dump_garbage(bad):
    with pytest.raises(CephError):
        base.parse_mon_dump(bad)


def test_rbd_pools():
    pools = [{"pool_name": "b", "application_metadata": {"rbd": {}}},
             {"pool_name": "cephfs", "application_metadata": {"cephfs": {}}},
             {"pool_name": "a", "application_metadata": {"rbd": {}}}]
    assert base.parse_rbd_pools(pools) == ["a", "b"]
    with pytest.raises(CephError):
        base.parse_rbd_pools([{"pool_name": "x"}])
    with pytest.raises(CephError):
        base.parse_rbd_pools({"pool_name": "x"})


def df(stored, max_avail, name="p"):
    return {"pools": [{"name": name, "id": 1, "stats": {"stored": stored, "max_avail": max_avail}}]}


def test_capacity_rules():
    assert base.parse_capacity(df(100, 900), {"quota_max_bytes": 0}, "p") == (1000, 900)
    assert base.parse_capacity(df(100, 900), {"quota_max_bytes": 500}, "p") == (500, 400)
    assert base.parse_capacity(df(100, 200), {"quota_max_bytes": 500}, "p") == (500, 200)
    assert base.parse_capacity(df(600, 200), {"quota_max_bytes": 500}, "p") == (500, 0)
    with pytest.raises(NotFoundError):
        base.parse_capacity(df(1, 1, "other"), {"quota_max_bytes": 0}, "p")
    for bad in ({"pools": [{"name": "p", "stats": {"stored": True, "max_avail": 1}}]}, {"pool": []}, []):
        with pytest.raises(CephError):
            base.parse_capacity(bad, {"quota_max_bytes": 0}, "p")
    with pytest.raises(CephError):
        base.parse_capacity(df(1, 1), {}, "p")


def test_feature_names():
    assert base.feature_names(1) == ["layering"]
    assert base.feature_names(1 | 4 | 8 | 16 | 32) == ["deep-flatten", "exclusive-lock", "fast-diff",
                                                       "layering", "object-map"]


def test_load_json():
    assert base.load_json('{"a": 1}', "x") == {"a": 1}
    with pytest.raises(CephError, match="not JSON"):
        base.load_json("Error EACCES", "x")


class FakeImages(base.Backend):
    """The shared policy only: an in-memory stand-in for a backend's primitives."""

    def __init__(self):
        base.Backend.__init__(self, None)
        self.images = {"img": {"size": 100, "meta": {}, "watchers": []}}
        self.removed = []
        self.resized = []

    def image_info(self, pool, ns, name):
        i = self.images[name]
        return base.ImageInfo(name, i["size"], ["layering"], None, i["watchers"])

    def get_meta(self, pool, ns, name, key):
        return self.images[name]["meta"].get(key)

    def _resize(self, pool, ns, name, size):
        self.resized.append(size)
        self.images[name]["size"] = size

    def _remove(self, pool, ns, name):
        self.removed.append(name)


def test_grow_never_shrinks():
    b = FakeImages()
    with pytest.raises(ConfigError, match="refusing to shrink"):
        b.grow_image("p", "", "img", 99)
    assert b.grow_image("p", "", "img", 100) == 100 and b.resized == []
    assert b.grow_image("p", "", "img", 200) == 200 and b.resized == [200]
    with pytest.raises(ConfigError):
        b.grow_image("p", "", "img", 0)


def test_remove_only_what_is_ours_and_idle():
    b = FakeImages()
    with pytest.raises(InUseError, match="no owner"):
        b.remove_image("p", "", "img", "")
    with pytest.raises(InUseError, match="not tagged"):
        b.remove_image("p", "", "img", "sr1")
    b.images["img"]["meta"][base.OWNER_META_KEY] = "sr1"
    b.images["img"]["watchers"] = ["10.0.0.5:0/1234"]
    with pytest.raises(InUseError, match="in use by 10.0.0.5"):
        b.remove_image("p", "", "img", "sr1")
    assert b.removed == []
    b.images["img"]["watchers"] = []
    b.remove_image("p", "", "img", "sr1")
    assert b.removed == ["img"]


def test_check_names_and_meta():
    base.Backend.check_names("rbd", "ns", "img")
    for args in (("rbd;x",), ("rbd", "n s"), ("rbd", "", "a/b"), ("", "", "x")):
        with pytest.raises(ConfigError):
            base.Backend.check_names(*args)
    base.Backend.check_meta(base.OWNER_META_KEY, "0f8fad5b-d9cb-469f-a165-70867728950e")
    for k, v in (("k;x", "v"), ("k", "a\nb"), ("k", ""), ("k", "x" * 300)):
        with pytest.raises(ConfigError):
            base.Backend.check_meta(k, v)


def test_ssh_fingerprint_format():
    paramiko = pytest.importorskip("paramiko")
    from rbdsr.backends.sshconn import fingerprint
    key = paramiko.RSAKey.generate(1024)
    fp = fingerprint(key)
    want = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    assert fp == "SHA256:" + want and len(fp) == 7 + 43


def test_open_backend_without_bindings():
    from rbdsr.backends import librbd_available, open_backend
    from rbdsr.config import TargetConfig
    from rbdsr.errors import RBDError
    if librbd_available():
        pytest.skip("the Ceph bindings are installed here (3.11 tier); the 3.6 tier checks the message")
    cfg = TargetConfig.from_dconf({"target": "10.0.0.1", "targetIQN": "rbd"})
    with pytest.raises(RBDError, match="python3-rados"):
        open_backend(cfg)
