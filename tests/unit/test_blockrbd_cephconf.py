"""ceph.conf reading for block-rbd (rbdsr.hotplug.cephconf) and claim cookies."""
import pytest

from rbdsr.errors import ConfigError, RBDError
from rbdsr.hotplug import cephconf
from rbdsr.hotplug.claims import make_cookie, parse_cookie

CONF = """
# a comment
[global]
    fsid = 4A0C1B2E-1111-2222-3333-444455556666
    mon host = [v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0] [v2:10.0.0.2:3300/0,v1:10.0.0.2:6789/0]
    keyring = /etc/ceph/$cluster.$name.keyring   ; inline comment
    auth_client_required = cephx

[client]
    rbd cache = false

[client.xen]
    keyring = "/etc/ceph/xen.keyring"

[osd.0]
    keyring = /var/lib/ceph/osd/ceph-0/keyring
"""


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.1", [("10.0.0.1", 6789)]),
    ("10.0.0.1,10.0.0.2:6790 10.0.0.3;10.0.0.4", [("10.0.0.1", 6789), ("10.0.0.2", 6790), ("10.0.0.3", 6789),
                                                  ("10.0.0.4", 6789)]),
    ("v1:10.0.0.1:6789/0,v2:10.0.0.1:3300/0", [("10.0.0.1", 6789)]),
    ("[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0]", [("10.0.0.1", 6789)]),
    ("[v2:[::1]:3300/0,v1:[::1]:6789/0]", [("::1", 6789)]),
    ("[::1]:6789,[fe80::1]", [("::1", 6789), ("fe80::1", 6789)]),
    ("mon1.example:6789, mon2.example", [("mon1.example", 6789), ("mon2.example", 6789)]),
    ("10.0.0.1:3300", []),                 # unprefixed 3300 is v2: not for the kernel
    ("v2:10.0.0.1:3300", []),
    ("10.0.0.1,10.0.0.1:6789", [("10.0.0.1", 6789)]),  # duplicates dropped
])
def test_mon_host_forms(text, expected):
    assert cephconf.parse_mon_host(text) == expected


@pytest.mark.parametrize("text", ["[v2:10.0.0.1:3300/0", "1.2.3.4:5:6", "[nothex]:1", "bad_host!", "h:70000"])
def test_bad_mon_host(text):
    with pytest.raises(ConfigError):
        cephconf.parse_mon_host(text, "/etc/ceph/ceph.conf")


def test_sections_and_precedence(tmp_path):
    path = tmp_path / "ceph.conf"
    path.write_text(CONF)
    admin = cephconf.read(str(path), "client.admin")
    assert admin.fsid == "4a0c1b2e-1111-2222-3333-444455556666"
    assert admin.monitors() == [("10.0.0.1", 6789), ("10.0.0.2", 6789)]
    assert admin.keyring == "/etc/ceph/$cluster.$name.keyring"   # comment stripped
    assert admin.get("rbd_cache") == "false"                     # [client] applies
    xen = cephconf.read(str(path), "client.xen")
    assert xen.keyring == "/etc/ceph/xen.keyring"                # [client.xen] wins, quotes gone
    assert xen.get("auth-client-required") == "cephx"            # _ - space are one key


def test_mon_sections_fallback(tmp_path):
    path = tmp_path / "ceph.conf"
    path.write_text("[global]\nfsid = x\n[mon.a]\nmon addr = 10.1.1.1:6789\n[mon.b]\n"
                    "mon_addr = [v2:10.1.1.2:3300,v1:10.1.1.2:6789]\n")
    assert cephconf.read(str(path), "client.admin").monitors() == [("10.1.1.1", 6789), ("10.1.1.2", 6789)]


def test_missing_file_is_empty(tmp_path):
    conf = cephconf.read(str(tmp_path / "absent.conf"), "client.admin")
    assert conf.monitors() == [] and conf.fsid is None and conf.keyring is None


def test_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as ei:
        cephconf.read(str(tmp_path), "client.admin")  # a directory
    assert str(tmp_path) in str(ei.value)


def test_cookie_round_trip():
    cookie = make_cookie("xenhost-1.example", "/local/domain/0/backend/vbd/3/51712")
    assert cookie == "block-rbd host=xenhost-1.example vbd=/local/domain/0/backend/vbd/3/51712"
    assert parse_cookie(cookie) == ("xenhost-1.example", "/local/domain/0/backend/vbd/3/51712")
    assert parse_cookie("auto 140234") is None      # krbd / rbd CLI locks are not ours
    assert parse_cookie("") is None


@pytest.mark.parametrize("host, vbd", [("bad host", "/x"), ("", "/x"), ("-x", "/x"), ("h", ""), ("h", "/a b")])
def test_bad_cookie_parts(host, vbd):
    with pytest.raises(RBDError):
        make_cookie(host, vbd)
