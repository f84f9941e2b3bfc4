"""block-rbd target= syntax and vbd mode parsing (rbdsr.hotplug.target)."""
import pytest

from rbdsr.errors import ConfigError
from rbdsr.hotplug.target import DEFAULT_CONF, HEAD, ImageRef, parse_mode, parse_target, target_spec


@pytest.mark.parametrize("text, pool, ns, image, snap", [
    ("rbd:vm-disk", "rbd", "", "vm-disk", HEAD),          # rbd:IMAGE = pool rbd
    ("rbd:rbd:vm-disk", "rbd", "", "vm-disk", HEAD),      # scheme + POOL:IMAGE
    ("rbd:xen:vm-disk", "xen", "", "vm-disk", HEAD),
    ("xen:vm-disk", "xen", "", "vm-disk", HEAD),          # scheme optional
    ("xen/tenant1:vm-disk", "xen", "tenant1", "vm-disk", HEAD),
    ("rbd:xen/tenant1:golden@base", "xen", "tenant1", "golden", "base"),
    ("xen:vm_1.img+x=y", "xen", "", "vm_1.img+x=y", HEAD),
    ("  rbd:xen:vm  ", "xen", "", "vm", HEAD),            # libxl keeps trailing whitespace
])
def test_image_spec_forms(text, pool, ns, image, snap):
    t = parse_target(text)
    assert (t.ref.pool, t.ref.namespace, t.ref.image, t.ref.snap) == (pool, ns, image, snap)
    assert t.ref.is_snap == (snap != HEAD)


def test_defaults():
    t = parse_target("rbd:xen:vm")
    assert t.cephx_id == "admin"
    assert t.entity == "client.admin"
    assert t.conf == DEFAULT_CONF and not t.conf_given
    assert t.keyring is None and t.monitors is None and t.fsid is None
    assert t.claim is True and t.clone_from is None
    assert t.timeout == 60.0
    assert t.default_keyring() == "/etc/ceph/ceph.client.admin.keyring"


def test_all_options():
    t = parse_target("rbd:xen/ns:vm,id=client.xen,conf=/etc/ceph/other.conf,keyring=/root/k.keyring,"
                     "mon=10.0.0.1;10.0.0.2:6790;[::1]:6789;mon3.example,"
                     "fsid=4A0C1B2E-1111-2222-3333-444455556666,claim=no,"
                     "clone-from=gold/ns2:base@v1,timeout=15")
    assert t.cephx_id == "xen"
    assert t.default_keyring() == "/etc/ceph/ceph.client.xen.keyring"
    assert t.conf == "/etc/ceph/other.conf" and t.conf_given
    assert t.keyring == "/root/k.keyring"
    assert t.monitors == [("10.0.0.1", 6789), ("10.0.0.2", 6790), ("::1", 6789), ("mon3.example", 6789)]
    assert t.fsid == "4a0c1b2e-1111-2222-3333-444455556666"
    assert t.claim is False
    assert t.clone_from == ImageRef("gold", "ns2", "base", "v1")
    assert t.timeout == 15.0


@pytest.mark.parametrize("value, expected", [("yes", True), ("on", True), ("1", True), ("No", False),
                                             ("off", False), ("0", False)])
def test_claim_values(value, expected):
    assert parse_target("p:i,claim=" + value).claim is expected


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("vm-disk", "is not POOL[/NAMESPACE]:IMAGE"),
    ("a:b:c:d", "is not POOL[/NAMESPACE]:IMAGE"),
    ("rbd:", "image name is empty"),
    ("xen:", "image name is empty"),
    (":img", "pool name is empty"),
    ("xen/:img", "namespace name is empty"),
    ("xen:img@", "image name is empty"),
    ("x/y/z:img", "contains '/' or '@'"),
    ("xen:im g", "whitespace"),
    ("xen:img\x01", "control characters"),
    ("xen:.hidden", "may only use"),
    ("xen:" + "a" * 97, "longer than 96"),
    ("xen:img,", "empty option"),
    ("xen:img,,id=a", "empty option"),
    ("xen:img,id", "not KEY=VALUE"),
    ("xen:img,user=a", "unknown option"),
    ("xen:img,id=a,id=b", "given twice"),
    ("xen:img,id=", "empty value"),
    ("xen:img,id=bad$id", "not a cephx id"),
    ("xen:img,conf=relative.conf", "absolute path"),
    ("xen:img,keyring=k", "absolute path"),
    ("xen:img,mon=10.0.0.1:99999", "out of range"),
    ("xen:img,mon=bad_host!", "mon="),
    ("xen:img,mon=10.0.0.1:3300", "msgr v2"),
    ("xen:img,fsid=nope", "not a cluster fsid"),
    ("xen:img,claim=maybe", "claim=yes or claim=no"),
    ("xen:img,timeout=0", "1-600"),
    ("xen:img,timeout=abc", "1-600"),
    ("xen:img,clone-from=gold:base", "must name a snapshot"),
    ("xen:img@s,clone-from=gold:base@v1", "cannot be used with IMAGE@SNAP"),
    ("xen:img," + "id=a" * 2000, "longer than"),
])
def test_invalid_targets(text, fragment):
    with pytest.raises(ConfigError) as ei:
        parse_target(text)
    msg = str(ei.value)
    assert fragment in msg
    assert msg.startswith("target: ")
    assert "syntax: [rbd:]POOL" in msg  # every error shows the syntax
    assert ei.value.key == "InvalidArg"


def test_error_quotes_value_safely():
    with pytest.raises(ConfigError) as ei:
        parse_target("xen:img,claim=\u00e9vil")
    assert "'?vil'" in str(ei.value)


def test_spec_round_trip():
    for text in ("xen:vm", "xen/ns:vm", "xen/ns:vm@snap"):
        ref = parse_target(text).ref
        assert target_spec(ref) == text  # command hints name it as block-rbd takes it
        assert ref.spec() == text.replace(":", "/")  # messages: the one image spelling


@pytest.mark.parametrize("text, write, check", [
    ("w", True, True), ("r", False, True), ("w!", True, False), ("r!", False, False),
    ("rw", True, True), ("ro", False, True), (" w\n", True, True),
])
def test_modes(text, write, check):
    m = parse_mode(text)
    assert (m.write, m.check) == (write, check)


@pytest.mark.parametrize("text", [None, "", "x", "wx", "rw+"])
def test_bad_modes(text):
    with pytest.raises(ConfigError):
        parse_mode(text)
