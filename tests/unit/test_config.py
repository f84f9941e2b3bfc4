"""rbdsr.config: device-config validation. Every invalid value has its own
error key and message; nothing raises anything but ConfigError."""
import pytest

from rbdsr.config import CONFIG_KEYS, TargetConfig, parse_monitors, parse_size
from rbdsr.credentials import resolve
from rbdsr.monaddr import resolve_host
from rbdsr.errors import ConfigError, RBDError
from rbdsr.secret import Secret, make_cephx_key

KEY = make_cephx_key(b"0123456789abcdef", sec=1700000000)
FP = "SHA256:" + "A" * 43
UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def base(**over):
    d = {"target": "10.0.0.1", "port": "6789", "targetIQN": "rbd", "SCSIid": "sr-img",
         "chapuser": "xen", "chappassword": KEY}
    for k, v in over.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


def ssh(**over):
    d = dict(target="10.0.0.1", port="6789", targetIQN="rbd", SCSIid="img", chapuser="cephadm",
             chappassword="pw", auth="ssh", ssh_host_key=FP)
    d.update(over)
    return d


def test_valid_cephx():
    cfg = TargetConfig.from_dconf(base())
    assert cfg.monitors == [("10.0.0.1", 6789)]
    assert (cfg.pool, cfg.namespace, cfg.image) == ("rbd", "", "sr-img")
    assert cfg.auth_mode == "cephx" and cfg.cephx_id == "xen"
    assert isinstance(cfg.key, Secret) and cfg.key.reveal() == KEY
    assert cfg.timeout == 30 and cfg.delete_image is False and cfg.size is None
    assert cfg.mon_addrs() == "10.0.0.1:6789"
    assert KEY not in repr(cfg)


def test_valid_full():
    cfg = TargetConfig.from_dconf(base(
        target="mon-a.example.com, 10.0.0.2:3301,[2001:db8::1]:6789,[::1]",
        targetIQN="pool_1/ns.a", chapuser="client.rbd-user", size="10G", timeout="12.5",
        delete_image="yes", ceph_conf="/etc/ceph/ceph.conf"))
    assert cfg.monitors == [("mon-a.example.com", 6789), ("10.0.0.2", 3301),
                            ("2001:db8::1", 6789), ("::1", 6789)]
    assert (cfg.pool, cfg.namespace) == ("pool_1", "ns.a")
    assert cfg.cephx_id == "rbd-user" and cfg.entity == "client.rbd-user"
    assert cfg.size == 10 << 30 and cfg.timeout == 12.5 and cfg.delete_image
    assert cfg.image_spec() == "pool_1/ns.a/sr-img"
    with pytest.raises(ConfigError):
        cfg.mon_addrs()  # a host name must be resolved first


def test_defaults_to_admin_only_when_nothing_given():
    cfg = TargetConfig.from_dconf(base(chapuser=None, chappassword=None, SCSIid=None))
    assert cfg.cephx_id == "admin" and cfg.key is None and cfg.image is None
    cfg = TargetConfig.from_dconf(base(chapuser=None))
    assert cfg.cephx_id == "admin"
    cfg = TargetConfig.from_dconf(base(cephx_id="other"))
    assert cfg.cephx_id == "other"


def test_port_absent_defaults():
    assert TargetConfig.from_dconf(base(port=None)).monitors == [("10.0.0.1", 6789)]
    # what the hook diverts, config accepts (rbdsr.diversion is the one rule)
    assert TargetConfig.from_dconf(base(port=" 6789 ")).monitors == [("10.0.0.1", 6789)]
    assert TargetConfig.from_dconf(base(port="3260", rbd="true")).monitors == [("10.0.0.1", 6789)]


def test_keyring_path_in_chappassword():
    cfg = TargetConfig.from_dconf(base(chappassword="/etc/ceph/ceph.client.xen.keyring"))
    assert cfg.key is None and cfg.keyring == "/etc/ceph/ceph.client.xen.keyring"


def test_keyring_read_via_cfg(tmp_path):
    p = tmp_path / "kr"
    p.write_text("[client.xen]\n  key = %s\n" % KEY)
    cfg = TargetConfig.from_dconf(base(chappassword=None, keyring=str(p)))
    creds = resolve(cfg)
    assert creds.key.reveal() == KEY and creds.source == "keyring %s" % p


def test_secret_reader():
    calls = []

    def reader(uuid):
        calls.append(uuid)
        return KEY

    cfg = TargetConfig.from_dconf(base(chappassword=None, chappassword_secret=UUID), secret_reader=reader)
    assert calls == [UUID] and cfg.key.reveal() == KEY


def test_valid_ssh():
    cfg = TargetConfig.from_dconf(ssh(ssh_port="2222", create_cephx_user="true", ssh_sudo="false"))
    assert cfg.auth_mode == "ssh" and cfg.ssh_user == "cephadm"
    assert cfg.ssh_password.reveal() == "pw" and str(cfg.ssh_password) == "<secret>"
    assert cfg.cephx_id == "xcpng-rbdsr" and cfg.ssh_host == "10.0.0.1" and cfg.ssh_port == 2222
    assert cfg.create_cephx_user and not cfg.ssh_sudo and cfg.ssh_host_key == FP
    assert cfg.key is None


def test_ssh_inferred_from_host_key():
    assert TargetConfig.from_dconf(ssh(auth=None)).auth_mode == "ssh"


def test_config_keys_documented():
    keys = [k for k, _ in CONFIG_KEYS]
    for k in ("target", "port", "targetIQN", "SCSIid", "chapuser", "chappassword", "chappassword_secret",
              "auth", "cephx_id", "keyring", "ceph_conf", "ssh_host_key", "size", "timeout", "delete_image"):
        assert k in keys
    assert len(set(keys)) == len(keys) and all(help_ for _, help_ in CONFIG_KEYS)


def test_resolve_literal_and_localhost():
    cfg = TargetConfig.from_dconf(base(target="127.0.0.1:6790,localhost"))
    got = cfg.resolve(timeout=5)
    assert ("127.0.0.1", 6790) in got and ("127.0.0.1", 6789) in got or ("::1", 6789) in got
    assert "127.0.0.1:6790" in cfg.mon_addrs()


def test_resolve_unknown_name():
    with pytest.raises(RBDError) as e:
        resolve_host("no-such-host.invalid", 5)
    assert e.value.key == "DNSError" and "no-such-host.invalid" in str(e.value)


LONG = "a" * 200
BAD = [
    # (id, dconf, key, message fragment)
    ("no-target", base(target=None), "ConfigTargetMissing", "no Ceph monitor"),
    ("empty-target", base(target=""), "ConfigTargetMissing", "no Ceph monitor"),
    ("blank-target", base(target="   "), "ConfigTargetMissing", "no Ceph monitor"),
    ("empty-entry", base(target="10.0.0.1,,10.0.0.2"), "ConfigTargetMissing", "empty entry"),
    ("bad-ipv4", base(target="10.0.0.256"), "ConfigTargetMissing", "not a valid IPv4"),
    ("host-shell", base(target="mon;rm -rf /"), "ConfigTargetMissing", "not a valid host name"),
    ("host-space", base(target="mon a"), "ConfigTargetMissing", "not a valid host name"),
    ("host-unicode", base(target="mön.example"), "ConfigTargetMissing", "not a valid host name"),
    ("host-dash", base(target="-mon"), "ConfigTargetMissing", "not a valid host name"),
    ("host-long", base(target=("a" * 60 + ".") * 5), "ConfigTargetMissing", "not a valid host name"),
    ("ipv6-bare", base(target="2001:db8::1"), "ConfigTargetMissing", "[addr]:port"),
    ("ipv6-bad", base(target="[2001:zz::1]:6789"), "ConfigTargetMissing", "not an IPv6"),
    ("ipv6-unclosed", base(target="[::1:6789"), "ConfigTargetMissing", "malformed"),
    ("mon-port-abc", base(target="10.0.0.1:abc"), "ConfigTargetMissing", "not a number"),
    ("mon-port-0", base(target="10.0.0.1:0"), "ConfigTargetMissing", "out of range"),
    ("mon-port-big", base(target="10.0.0.1:70000"), "ConfigTargetMissing", "out of range"),
    ("mon-port-msgr2", base(target="10.0.0.1:3300"), "ConfigTargetMissing", "msgr v2"),
    ("mon-port-empty", base(target="10.0.0.1:"), "ConfigTargetMissing", "empty port"),
    ("too-many-mons", base(target=",".join("10.0.0.%d" % i for i in range(1, 20))),
     "ConfigTargetMissing", "more than 16"),
    ("port-abc", base(port="abc"), "ISCSIPort", "does not select RBDSR"),
    ("port-0", base(port="0"), "ISCSIPort", "does not select RBDSR"),
    ("port-16789", base(port="16789"), "ISCSIPort", "does not select RBDSR"),
    ("port-3260", base(port="3260"), "ISCSIPort", "does not select RBDSR"),
    ("port-empty", base(port=""), "ISCSIPort", "does not select RBDSR"),
    ("no-pool", base(targetIQN=None), "ConfigTargetIQNMissing", "no pool"),
    ("empty-pool", base(targetIQN=""), "ConfigTargetIQNMissing", "no pool"),
    ("pool-slash-empty", base(targetIQN="/ns"), "ConfigTargetIQNMissing", "pool name is empty"),
    ("ns-empty", base(targetIQN="rbd/"), "ConfigTargetIQNMissing", "namespace name is empty"),
    ("iqn-like", base(targetIQN="iqn.2004-04.com.example:rbd"), "ConfigTargetIQNMissing", "may only use"),
    ("iqn-star", base(targetIQN="*"), "ConfigTargetIQNMissing", "may only use"),
    ("pool-3-parts", base(targetIQN="a/b/c"), "ConfigTargetIQNMissing", "pool or pool/namespace"),
    ("pool-at", base(targetIQN="rbd@snap"), "ConfigTargetIQNMissing", "'/' or '@'"),
    ("pool-shell", base(targetIQN="rbd;reboot"), "ConfigTargetIQNMissing", "may only use"),
    ("pool-dollar", base(targetIQN="$(id)"), "ConfigTargetIQNMissing", "may only use"),
    ("pool-space", base(targetIQN="my pool"), "ConfigTargetIQNMissing", "may only use"),
    ("pool-dot", base(targetIQN=".mgr"), "ConfigTargetIQNMissing", "may only use"),
    ("pool-long", base(targetIQN=LONG), "ConfigTargetIQNMissing", "longer than 127"),
    ("ns-long", base(targetIQN="rbd/" + LONG), "ConfigTargetIQNMissing", "longer than 64"),
    ("pool-newline", base(targetIQN="rbd\nx"), "ConfigTargetIQNMissing", "control characters"),
    ("image-empty", base(SCSIid=""), "ConfigSCSIid", "image name is empty"),
    ("image-slash", base(SCSIid="a/b"), "ConfigSCSIid", "'/' or '@'"),
    ("image-at", base(SCSIid="img@snap"), "ConfigSCSIid", "'/' or '@'"),
    ("image-backtick", base(SCSIid="`reboot`"), "ConfigSCSIid", "may only use"),
    ("image-quote", base(SCSIid="a'b"), "ConfigSCSIid", "may only use"),
    ("image-unicode", base(SCSIid="imäge"), "ConfigSCSIid", "may only use"),
    ("image-space", base(SCSIid="my image"), "ConfigSCSIid", "may only use"),
    ("image-tab", base(SCSIid="a\tb"), "ConfigSCSIid", "control characters"),
    ("image-nul", base(SCSIid="a\x00b"), "ConfigSCSIid", "control characters"),
    ("image-long", base(SCSIid=LONG), "ConfigSCSIid", "longer than 96"),
    ("image-huge", base(SCSIid="x" * 5000), "ConfigSCSIid", "too long"),
    ("image-not-str", base(SCSIid=5), "ConfigSCSIid", "must be text"),
    ("key-bad", base(chappassword="AQBpLmVq" + "A" * 30 + "=="), "InvalidArg", "neither a cephx key"),
    ("key-bad-cephx", base(auth="cephx", chappassword="password"), "InvalidArg", "not a cephx key"),
    ("user-shell", base(chapuser="admin;id"), "InvalidArg", "cephx id"),
    ("user-comma", base(chapuser="admin,secret=x"), "InvalidArg", "cephx id"),
    ("cephx-id-long", base(cephx_id="u" * 80), "InvalidArg", "cephx id"),
    ("secret-bad-uuid", base(chappassword=None, chappassword_secret="not-a-uuid"), "InvalidSecret",
     "not a secret uuid"),
    ("secret-no-reader", base(chappassword=None, chappassword_secret=UUID), "InvalidSecret", "no way to read"),
    ("keyring-relative", base(keyring="ceph.keyring"), "InvalidArg", "absolute path"),
    ("keyring-and-path", base(keyring="/a", chappassword="/b"), "InvalidArg", "keyring is also given"),
    ("conf-relative", base(ceph_conf="../ceph.conf"), "InvalidArg", "absolute path"),
    ("auth-bad", base(auth="kerberos"), "InvalidArg", "not cephx or ssh"),
    ("size-abc", base(size="big"), "InvalidArg", "not a size"),
    ("size-negative", base(size="-1"), "InvalidArg", "not a size"),
    ("size-small", base(size="1M"), "InvalidArg", "below the minimum"),
    ("size-huge", base(size="99999P"), "InvalidArg", "above the maximum"),
    ("timeout-abc", base(timeout="soon"), "InvalidArg", "not a number of seconds"),
    ("timeout-zero", base(timeout="0"), "InvalidArg", "outside 1-600"),
    ("timeout-huge", base(timeout="3600"), "InvalidArg", "outside 1-600"),
    ("delete-bad", base(delete_image="maybe"), "InvalidArg", "not a boolean"),
    ("ssh-opt-with-cephx", base(ssh_host_key=FP), "InvalidArg", "only applies with auth=ssh"),
    ("ssh-no-user", ssh(chapuser=""), "InvalidArg", "SSH login name"),
    ("ssh-no-password", ssh(chappassword=""), "InvalidArg", "SSH password"),
    ("ssh-bad-user", ssh(chapuser="root;id"), "InvalidArg", "not a valid login name"),
    ("ssh-admin", ssh(cephx_id="admin"), "InvalidArg", "never fetches the admin key"),
    ("ssh-client-admin", ssh(cephx_id="client.admin"), "InvalidArg", "never fetches the admin key"),
    ("ssh-bad-fp", ssh(ssh_host_key="MD5:aa:bb"), "InvalidArg", "not a fingerprint"),
    ("ssh-bad-port", ssh(ssh_port="22;id"), "InvalidArg", "not a number"),
    ("ssh-bad-host", ssh(ssh_host="evil host"), "InvalidArg", "not a valid host"),
    ("ssh-keyring", ssh(keyring="/k"), "InvalidArg", "does not apply"),
    ("ssh-bad-sudo", ssh(ssh_sudo="perhaps"), "InvalidArg", "not a boolean"),
    ("ssh-known-hosts-rel", ssh(ssh_known_hosts="kh"), "InvalidArg", "absolute path"),
]


def test_bad_table_is_big_and_distinct():
    assert len(BAD) >= 40
    assert len(set(b[0] for b in BAD)) == len(BAD)


@pytest.mark.parametrize("name,dconf,key,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_dconf(name, dconf, key, fragment):
    with pytest.raises(ConfigError) as e:
        TargetConfig.from_dconf(dconf)
    assert e.value.key == key, str(e.value)
    assert fragment in str(e.value)
    assert "device-config" in str(e.value)
    # no secret ever in the message
    assert KEY not in str(e.value) and "pw" != str(e.value)


@pytest.mark.parametrize("secret", [KEY, "my-ssh-password!", "/etc/ceph/ceph.client.x.keyring"])
def test_secret_values_not_in_messages(secret):
    for dconf in (base(chappassword=secret, targetIQN="bad pool"), base(chappassword=secret, auth="kerberos")):
        with pytest.raises(ConfigError) as e:
            TargetConfig.from_dconf(dconf)
        assert secret not in str(e.value)


def test_wrong_key_not_echoed():
    with pytest.raises(ConfigError) as e:
        TargetConfig.from_dconf(base(chappassword="s3cr3t-typo-key"))
    assert "s3cr3t" not in str(e.value)


def test_reader_failure_is_invalid_secret():
    def reader(uuid):
        raise RuntimeError("xapi says no: s3cr3t")

    with pytest.raises(ConfigError) as e:
        TargetConfig.from_dconf(base(chappassword=None, chappassword_secret=UUID), secret_reader=reader)
    assert e.value.key == "InvalidSecret" and "s3cr3t" not in str(e.value)


def test_not_a_dict():
    with pytest.raises(ConfigError):
        TargetConfig.from_dconf(["target"])


def test_parse_monitors_dedups():
    assert parse_monitors("10.0.0.1,10.0.0.1:6789") == [("10.0.0.1", 6789)]


def test_parse_size_units():
    assert parse_size("64M") == 64 << 20
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("1073741824") == 1 << 30
