"""rbdsr.credentials: one resolution for every consumer; the caps check of an
SSH-fetched user; the HA config; secrets never echoed; files that are not
regular files never block; the inline secret= fallback said out loud."""
import os

import pytest

from rbdsr import credentials, files, krbd
from rbdsr.backends import caps
from rbdsr.bounded import run_bounded
from rbdsr.config import TargetConfig
from rbdsr.credentials import Credentials
from rbdsr.errors import AuthError, ConfigError, MapError, RBDError
from rbdsr.hotplug import cephconf
from rbdsr.secret import Secret, looks_like_key, make_cephx_key, read_keyring, show

KEY = make_cephx_key(b"credentials-test")
KEY2 = make_cephx_key(b"another-test-key")
SSH_PASSWORD = "s3cret-ssh-Passw0rd"
FSID = "0b6f5b0e-1c4e-4f4e-9a53-5d3c1b2a9f10"


def dconf(**over):
    d = {"target": "10.0.0.1", "port": "6789", "targetIQN": "rbd", "SCSIid": "sr1", "chapuser": "xen",
         "chappassword": KEY}
    d.update(over)
    return dict((k, v) for k, v in d.items() if v is not None)


def ssh_dconf(**over):
    d = dconf(auth="ssh", chapuser="deploy", chappassword=SSH_PASSWORD,
              ssh_host_key="SHA256:" + "A" * 43, cephx_id="xcpng")
    d.update(over)
    return dict((k, v) for k, v in d.items() if v is not None)


# -- resolution ------------------------------------------------------------------

def test_key_from_device_config():
    creds = credentials.resolve(TargetConfig.from_dconf(dconf()))
    assert (creds.cephx_id, creds.key.reveal(), creds.source) == ("xen", KEY, "device-config")
    assert KEY not in repr(creds)


def test_keyring_file(tmp_path):
    kr = tmp_path / "kr"
    kr.write_text("[client.xen]\n\tkey = %s\n" % KEY)
    creds = credentials.resolve(TargetConfig.from_dconf(dconf(chappassword=None, keyring=str(kr))))
    assert creds.key.reveal() == KEY and str(kr) in creds.source


def test_no_key_is_a_cluster_without_cephx():
    creds = credentials.resolve(TargetConfig.from_dconf(dconf(chappassword=None)))
    assert creds.key is None and creds.cephx_id == "xen"


def test_ssh_mode_takes_the_fetched_key_and_only_fetches_once():
    cfg = TargetConfig.from_dconf(ssh_dconf())
    calls = []

    def fetch():
        calls.append(1)
        return Credentials("xcpng", Secret(KEY), "fetched over SSH")

    creds = credentials.resolve(cfg, fetch)
    assert (creds.cephx_id, creds.key.reveal()) == ("xcpng", KEY) and calls == [1]


def test_ssh_mode_without_a_fetcher_or_with_a_bad_answer_is_an_auth_error():
    cfg = TargetConfig.from_dconf(ssh_dconf())
    with pytest.raises(AuthError):
        credentials.resolve(cfg)
    with pytest.raises(AuthError):
        credentials.resolve(cfg, lambda: Credentials("xcpng", Secret(SSH_PASSWORD), "x"))


def test_password_given_as_a_keyring_path_is_never_echoed(tmp_path):
    # an SSH password starting with '/' typed without auth=ssh is taken as a keyring path
    secret_path = "/" + SSH_PASSWORD
    cfg = TargetConfig.from_dconf(dconf(chappassword=secret_path))
    with pytest.raises(ConfigError) as e:
        credentials.resolve(cfg)
    assert SSH_PASSWORD not in str(e.value)
    assert "chappassword" in str(e.value)
    assert SSH_PASSWORD not in repr(cfg)


def test_password_keyring_path_too_long_is_not_echoed():
    with pytest.raises(ConfigError) as e:
        TargetConfig.from_dconf(dconf(chappassword="/" + SSH_PASSWORD * 80))
    assert SSH_PASSWORD not in str(e.value)


def test_block_rbd_keyring_search(tmp_path, monkeypatch):
    kr = tmp_path / "ceph.client.vm.keyring"
    kr.write_text("[client.vm]\nkey = %s\n" % KEY)
    monkeypatch.setattr(credentials, "DEFAULT_KEYRINGS", (str(tmp_path / "ceph.{entity}.keyring"),))
    creds = credentials.find_keyring("vm")
    assert creds.key.reveal() == KEY
    with pytest.raises(ConfigError) as e:
        credentials.find_keyring("other")
    assert KEY not in str(e.value)


# -- the HA config ---------------------------------------------------------------

def test_ha_config_carries_the_cephx_key_never_the_ssh_login():
    d = ssh_dconf(chappassword_secret="0b6f5b0e-1c4e-4f4e-9a53-5d3c1b2a9f10", ssh_known_hosts="/k",
                  ssh_host="10.0.0.9", ssh_port="2222", create_cephx_user="true", keyring="/x")
    creds = Credentials("xcpng", Secret(KEY), "fetched over SSH")
    ha = credentials.ha_device_config(d, creds, {"multipathing": "false"})
    assert ha["chapuser"] == "xcpng" and ha["chappassword"] == KEY and ha["auth"] == "cephx"
    assert ha["target"] == "10.0.0.1" and ha["SCSIid"] == "sr1" and ha["multipathing"] == "false"
    text = repr(ha)
    for gone in (SSH_PASSWORD, "deploy", "ssh_", "secret", "keyring", "create_cephx_user"):
        assert gone not in text, gone
    # and the HA config is a valid cephx config by itself
    cfg = TargetConfig.from_dconf(ha)
    assert cfg.auth_mode == "cephx" and cfg.cephx_id == "xcpng" and cfg.key.reveal() == KEY


# -- caps of an SSH-fetched user -----------------------------------------------

@pytest.mark.parametrize("granted", [
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd"},
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd", "mgr": "profile rbd pool=rbd"},
    {"mon": "profile  rbd", "osd": "profile rbd pool=other, profile rbd pool=rbd"},
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd namespace=t"},
])
def test_least_privilege_caps_pass(granted):
    ns = "t" if "namespace" in granted["osd"] else ""
    caps.check_least_privilege("client.x", granted, "rbd", ns)


@pytest.mark.parametrize("granted", [
    {"mon": "allow *", "osd": "allow *", "mds": "allow *", "mgr": "allow *"},       # admin
    {"mon": "profile rbd", "osd": "allow rwx"},
    {"mon": "allow r", "osd": "profile rbd pool=rbd"},
    {"mon": "profile rbd", "osd": "profile rbd"},                                    # every pool
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd, allow *"},
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd", "mds": "allow"},
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd", "mgr": "allow *"},
    {"mon": "profile rbd", "osd": "profile rbd pool=other"},                         # not our pool
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd namespace=other"},
    {"mon": "profile rbd"},
    {},
    "not a dict",
])
def test_admin_like_or_wrong_caps_are_refused(granted):
    with pytest.raises(AuthError) as e:
        caps.check_least_privilege("client.x", granted, "rbd", "t" if "namespace" in str(granted) else "")
    assert "profile rbd pool=rbd" in str(e.value)


# -- never echo a key-shaped value ------------------------------------------------

@pytest.mark.parametrize("field", ["target", "targetIQN", "SCSIid", "chapuser", "cephx_id", "ssh_host"])
def test_key_pasted_in_the_wrong_field_is_refused_and_never_echoed(field):
    # a key whose base64 has no '/' passes the name characters check: make sure of that case
    key = next(make_cephx_key(bytes([i] * 16)) for i in range(256) if "/" not in make_cephx_key(bytes([i] * 16)))
    d = ssh_dconf(**{field: key}) if field == "ssh_host" else dconf(**{field: key})
    with pytest.raises(ConfigError) as e:
        TargetConfig.from_dconf(d)
    assert key not in str(e.value) and key[:20] not in str(e.value)


def test_show_withholds_keys_and_live_secrets():
    assert looks_like_key("xx" + KEY + "yy")
    assert KEY not in show("pool " + KEY)
    s = Secret(SSH_PASSWORD)
    assert SSH_PASSWORD not in show("a " + SSH_PASSWORD) and show(s) == "<secret>"
    assert show("plain") == "'plain'"


# -- files that are not regular files never block -----------------------------------

def _fifo(tmp_path):
    p = str(tmp_path / "fifo")
    os.mkfifo(p)
    return p


def _bounded(fn):
    # a blocking open would hang for ever: give it 20 s, then the test fails with TimeoutError_
    return run_bounded(fn, 20.0, "reading a FIFO")


def test_keyring_fifo_is_refused_not_waited_on(tmp_path):
    p = _fifo(tmp_path)
    with pytest.raises(ConfigError) as e:
        _bounded(lambda: read_keyring(p, "client.admin"))
    assert "not a regular file" in str(e.value)


def test_ceph_conf_fifo_is_refused_not_waited_on(tmp_path):
    p = _fifo(tmp_path)
    with pytest.raises(ConfigError):
        _bounded(lambda: cephconf.read(p, "client.admin"))
    with pytest.raises(ConfigError):
        _bounded(lambda: files.check_regular(p, "ceph_conf"))


def test_known_hosts_fifo_is_refused_not_waited_on(tmp_path):
    pytest.importorskip("paramiko", reason="paramiko is part of both unit venvs")
    from rbdsr.backends.sshconn import SSHConnection
    p = _fifo(tmp_path)
    conn = SSHConnection.__new__(SSHConnection)
    import paramiko
    conn._paramiko = paramiko
    with pytest.raises(ConfigError):
        _bounded(lambda: conn._load_known_hosts(p, missing_ok=False))


def test_ceph_conf_fifo_is_refused_before_librados_opens_it(tmp_path):
    pytest.importorskip("rados", reason="the Ceph bindings exist for the 3.11 tier only")
    from rbdsr.backends.librbd import LibrbdBackend
    cfg = TargetConfig.from_dconf(dconf(ceph_conf=_fifo(tmp_path)))
    with pytest.raises(ConfigError) as e:
        _bounded(lambda: LibrbdBackend(cfg, credentials.resolve(cfg)))
    assert "not a regular file" in str(e.value)


def test_directory_and_missing_files(tmp_path):
    with pytest.raises(ConfigError):
        files.read_regular(str(tmp_path), 100, "x")
    assert files.read_regular(str(tmp_path / "none"), 100, "x", missing_ok=True) is None
    with pytest.raises(ConfigError):
        files.read_regular(str(tmp_path / "none"), 100, "x")


# -- the secret= fallback is explicit and logged without the key -----------------------

def _fake_bus(tmp_path):
    root = tmp_path / "sys"
    bus = root / "bus" / "rbd"
    (bus / "devices").mkdir(parents=True)
    (bus / "add_single_major").write_text("")
    return str(root), bus / "add_single_major"


def test_inline_secret_fallback_is_logged_without_the_key(tmp_path, monkeypatch):
    root, add = _fake_bus(tmp_path)
    monkeypatch.setattr(krbd.kernel_keyring, "available", lambda: False)
    lines = []
    with pytest.raises(MapError) as e:  # nothing appears in the fake sysfs after the write
        krbd.map_image(krbd.ImageId(FSID, "rbd", "", "img"), ["10.0.0.1:6789"], Credentials("xen", Secret(KEY), "t"),
                       timeout=10, log=lines.append, sysfs_root=root, dev=str(tmp_path / "dev"),
                       stable_root=str(tmp_path / "stable"), lock_path=str(tmp_path / "lock"))
    assert KEY not in str(e.value)
    assert len(lines) == 1 and "secret=" in lines[0] and "client.xen" in lines[0] and KEY not in lines[0]
    written = add.read_text()
    assert written.startswith("10.0.0.1:6789 name=xen,secret=%s," % KEY)  # the fallback really happened


def test_forced_inline_secret_is_not_probed_or_logged(tmp_path, monkeypatch):
    root, add = _fake_bus(tmp_path)
    lines = []
    with pytest.raises(RBDError):
        krbd.map_image(krbd.ImageId(FSID, "rbd", "", "img"), ["10.0.0.1:6789"], Credentials("xen", Secret(KEY), "t"),
                       timeout=10, use_keyring=False, log=lines.append, sysfs_root=root,
                       dev=str(tmp_path / "dev"), stable_root=str(tmp_path / "stable"),
                       lock_path=str(tmp_path / "lock"))
    # forced inline by the caller: no probe, no log line
    assert lines == [] and "secret=" in add.read_text()
