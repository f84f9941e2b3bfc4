"""The map request text, name checks, stable paths and monitor resolution."""
import socket
import time

import pytest

from rbdsr import krbd
from rbdsr.bounded import run_bounded
from rbdsr.hostlock import HostLock
from rbdsr.errors import ConfigError, RBDError, TimeoutError_
from rbdsr.secret import Secret, make_cephx_key

KEY = make_cephx_key(bytes(range(16)))
FSID = "0b6f5b0e-1c4e-4f4e-9a53-5d3c1b2a9f10"
FSID2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def test_keyring_options_never_hold_the_key():
    opts = krbd.build_options("admin", 29, key=Secret(KEY), use_keyring=True)
    assert opts == "name=admin,key=client.admin,mount_timeout=29"
    assert KEY not in opts


def test_secret_fallback_puts_the_key_inline():
    opts = krbd.build_options("rbdsr", 10, key=Secret(KEY), use_keyring=False)
    assert opts == "name=rbdsr,secret=%s,mount_timeout=10" % KEY


def test_read_only_namespace_fsid_and_extra():
    opts = krbd.build_options("admin", 5, read_only=True, fsid="0b6f5b0e-1c4e-4f4e-9a53-5d3c1b2a9f10", namespace="ns1",
                              key=None, extra=["queue_depth=128"])
    assert opts.split(",") == ["name=admin", "mount_timeout=5", "fsid=0b6f5b0e-1c4e-4f4e-9a53-5d3c1b2a9f10", "_pool_ns=ns1", "ro",
                               "queue_depth=128"]


@pytest.mark.parametrize("bad", ["secret=x", "a,b", "a b", "", "key=client.x", "name=other"])
def test_extra_options_cannot_smuggle_credentials_or_syntax(bad):
    with pytest.raises(ConfigError):
        krbd.build_options("admin", 5, extra=[bad])


@pytest.mark.parametrize("cephx_id", ["", "ad min", "a,b", "x=y", "a\n"])
def test_bad_cephx_id(cephx_id):
    with pytest.raises(ConfigError):
        krbd.build_options(cephx_id, 5)


def test_add_string_head_and_snap():
    head = krbd.ImageId(FSID, "rbd", "", "vm1")
    snap = krbd.ImageId(FSID, "rbd", "", "vm1", "s1")
    assert krbd.build_add_string("1.2.3.4:6789", "name=a", head) == "1.2.3.4:6789 name=a rbd vm1"
    assert krbd.build_add_string("1.2.3.4:6789", "name=a", snap) == "1.2.3.4:6789 name=a rbd vm1 s1"


@pytest.mark.parametrize("pool,ns,image,snap", [
    ("r bd", "", "img", "-"), ("rbd", "", "im/g", "-"), ("rbd", "", "", "-"), ("rbd", "a\tb", "img", "-"),
    ("rbd", "", "img@x", "-"), ("..", "", "img", "-"), ("rbd", "-", "img", "-"), ("rbd", "", "img", "s 1"),
])
def test_names_that_cannot_be_mapped(pool, ns, image, snap):
    with pytest.raises(ConfigError):
        krbd.validate(krbd.ImageId(FSID, pool, ns, image, snap))


def test_stable_path_layout_is_unambiguous():
    assert krbd.stable_path(krbd.ImageId(FSID, "rbd", "", "vm1")) == "/dev/disk/by-id/rbdsr/rbd/-/vm1"
    assert krbd.stable_path(krbd.ImageId(FSID, "rbd", "ns", "vm1")) == "/dev/disk/by-id/rbdsr/rbd/ns/vm1"
    assert krbd.stable_path(krbd.ImageId(FSID, "rbd", "", "vm1", "s")) == "/dev/disk/by-id/rbdsr/rbd/-/vm1@s"
    # The fsid is not part of the path: every host of a pool gets the same one.
    assert krbd.stable_path(krbd.ImageId(FSID, "p", "", "i")) == krbd.stable_path(krbd.ImageId(FSID2, "p", "", "i"))


def test_image_id_normalises():
    i = krbd.ImageId("ABC", "p", None, "i", None)
    assert i == krbd.ImageId("abc", "p", "", "i", "-")
    assert i.spec() == "p/i"
    assert krbd.ImageId(None, "p", "n", "i", "s").spec() == "p/n/i@s"


def test_resolve_ip_literals_and_ports():
    assert krbd.resolve_monitors([("10.0.0.1", 6789), ("10.0.0.2", 6790)]) == "10.0.0.1:6789,10.0.0.2:6790"
    assert krbd.resolve_monitors(["10.0.0.1", "10.0.0.1:6789", "[::1]:6790", "[fe80::1]"]) == \
        "10.0.0.1:6789,[::1]:6790,[fe80::1]:6789"


def test_resolve_localhost_by_name():
    assert krbd.resolve_monitors([("localhost", 6789)]) in ("127.0.0.1:6789", "[::1]:6789")


def test_resolution_failure_is_dns_error():
    def refuse(host, port, family, socktype):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ConfigError) as e:
        krbd.resolve_monitors(["mon.example"], resolver=refuse)
    assert e.value.key == "DNSError" and "mon.example" in str(e.value)


def test_slow_resolution_is_bounded():
    def slow(host, port, family, socktype):
        time.sleep(5)

    t0 = time.monotonic()
    with pytest.raises(RBDError) as e:
        krbd.resolve_monitors(["slow.example"], timeout=0.3, resolver=slow)
    assert time.monotonic() - t0 < 2
    assert e.value.key == "DNSError"


@pytest.mark.parametrize("mons,key", [([], "ConfigTargetMissing"), ([("10.0.0.1", 0)], "ConfigTargetMissing"),
                                      (["10.0.0.1:70000"], "ConfigTargetMissing"),
                                      (["10.0.0.1:3300"], "ConfigTargetMissing"),
                                      (["[fe80::1%eth0 ro]"], "ConfigTargetMissing"),
                                      ([("fe80::1%eth0 ro", 6789)], "ConfigTargetMissing")])
def test_bad_monitor_lists(mons, key):
    with pytest.raises(ConfigError) as e:
        krbd.resolve_monitors(mons)
    assert e.value.key == key


def test_run_bounded_times_out_and_propagates():
    with pytest.raises(TimeoutError_):
        run_bounded(lambda: time.sleep(3), 0.2, "sleeping")
    with pytest.raises(ValueError):
        run_bounded(lambda: int("x"), 1, "parsing")
    assert run_bounded(lambda: 42, 1, "answering") == 42


def test_host_lock_is_exclusive_and_bounded(tmp_path):
    path = str(tmp_path / "sub" / "krbd.lock")
    with HostLock(path, 1):
        t0 = time.monotonic()
        with pytest.raises(TimeoutError_):
            with HostLock(path, 0.3):
                pass
        assert time.monotonic() - t0 < 2
    with HostLock(path, 0.3):
        pass


# -- the add line is checked where it is built, whatever the caller validated

@pytest.mark.parametrize("ns", ["a,b", "a=b", "a b", "a\tb"])
def test_namespace_that_would_break_the_option_list_is_refused(ns):
    with pytest.raises(ConfigError):
        krbd.build_options("admin", 5, namespace=ns)
    with pytest.raises(ConfigError):
        krbd.validate(krbd.ImageId(FSID, "rbd", ns, "img"))


@pytest.mark.parametrize("fsid", ["ab-cd", "x" * 36, FSID + ",ro", FSID + " x", "not a uuid at all"])
def test_unvalidated_fsid_is_refused(fsid):
    with pytest.raises(ConfigError):
        krbd.build_options("admin", 5, fsid=fsid)
    with pytest.raises(ConfigError):
        krbd.build_add_string("1.2.3.4:6789", "name=a", krbd.ImageId(None, "rbd", "", "img")._replace(fsid=fsid))


def test_scope_id_cannot_put_a_space_in_the_line():
    # Python >= 3.9 parses "fe80::1%eth0 ro" as an IPv6 address with a scope id
    with pytest.raises(ConfigError):
        krbd.resolve_monitors(["[fe80::1%eth0 ro]:6789"])
    with pytest.raises(ConfigError):
        krbd.build_add_string("[fe80::1%eth0 ro]:6789", "name=a", krbd.ImageId(FSID, "rbd", "", "img"))


def test_add_line_never_shows_the_inline_key():
    opts = krbd.build_options("admin", 5, key=Secret(KEY), use_keyring=False)
    with pytest.raises(ConfigError) as e:
        krbd.build_add_string("1.2.3.4:6789 x", opts, krbd.ImageId(FSID, "rbd", "", "img"))
    assert KEY not in str(e.value)


@pytest.mark.parametrize("release,has", [("4.19.0+1", False), ("4.19.19-7.0.15.1.xs8", False), ("5.0.21", False),
                                         ("5.1.0", True), ("6.1.0-57-amd64", True), ("10.2", True), ("junk", False)])
def test_alloc_size_only_on_kernels_that_have_it(release, has):
    # dom0's 4.19 rejects an unknown option: the map would fail with EINVAL
    assert krbd.kernel_has_alloc_size(release) is has
    assert krbd.alignment_options(release) == (["alloc_size=4194304"] if has else [])


def test_driver_map_asks_for_object_aligned_io_hints(monkeypatch):
    seen = {}
    monkeypatch.setattr(krbd, "map_image", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(krbd, "kernel_has_alloc_size", lambda release=None: True)

    class Cfg(object):
        image, pool, namespace, monitors, timeout = "img", "rbd", "", ["127.0.0.1:6789"], 30

    krbd.map_from_config(Cfg(), None, fsid=FSID)
    assert seen["extra_options"] == ["alloc_size=4194304"]
