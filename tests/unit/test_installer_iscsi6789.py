"""enable refuses to take over a genuine iSCSI SR that uses port 6789 (target
IQN iqn./eui./naa.): it asks XAPI (here its stand-in, tests/fakesm/xapi),
names the SR, changes nothing; --allow-iscsi-on-6789 goes ahead, saying so.
RBD SRs, iSCSI on other ports and rbd=true SRs are not in the way."""
import pytest

import driverharness as h
import smtrees
from smtrees import make_env, run_cli
from rbdsr.installer import xapicheck

SR_UUID = "5a1f3c9e-2b7d-4e6f-8a0b-1c2d3e4f5a6b"


def _xapi(tmpdir, monkeypatch, device_config, sr_type="lvmoiscsi", name="SAN LUN 7"):
    db = str(tmpdir.join("xapi.json"))
    monkeypatch.syspath_prepend(h.XAPI_STUB)
    monkeypatch.setenv(xapicheck.UNDER_ROOT_ENV, "1")
    monkeypatch.setenv("FAKEXAPI_DB", db)
    h.XenAPI.seed(db, sr_uuid=SR_UUID, device_config=device_config, sr_type=sr_type)
    data = h.XenAPI.load_db(db)
    for rec in data["SR"].values():
        rec["name_label"] = name
    h.XenAPI.save_db(data, db)


def _iscsi(iqn, port="6789", **extra):
    d = {"target": "10.0.0.5", "port": port, "targetIQN": iqn, "SCSIid": "36001405abcdef0123456789"}
    d.update(extra)
    return d


@pytest.mark.parametrize("iqn", ["iqn.2004-04.com.example:storage.lun7", "eui.02004567A425678D",
                                 "naa.52004567BA64678D", " IQN.2001-05.com.equallogic:x"])
def test_a_genuine_iscsi_sr_on_6789_is_refused_by_name(tmpdir, monkeypatch, iqn):
    _xapi(tmpdir, monkeypatch, _iscsi(iqn))
    root, release = make_env(tmpdir, "flat")
    before = smtrees.tree_state(root)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 2, out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_the_refusal_names_the_sr_and_the_way_out(tmpdir, monkeypatch, capsys):
    _xapi(tmpdir, monkeypatch, _iscsi("iqn.2004-04.com.example:storage.lun7"))
    root, release = make_env(tmpdir, "flat")
    rc, _out = run_cli(["enable"], root, release)
    err = capsys.readouterr().err
    assert rc == 2
    assert SR_UUID in err and "SAN LUN 7" in err and "--allow-iscsi-on-6789" in err, err


def test_the_opt_in_enables_and_warns(tmpdir, monkeypatch):
    _xapi(tmpdir, monkeypatch, _iscsi("iqn.2004-04.com.example:storage.lun7"))
    root, release = make_env(tmpdir, "flat")
    rc, out = run_cli(["enable"], root, release, extra=["--allow-iscsi-on-6789"])
    assert rc == 0, out
    assert "warning: --allow-iscsi-on-6789" in out and SR_UUID in out
    assert run_cli(["check"], root, release)[0] == 0


@pytest.mark.parametrize("dconf,sr_type", [
    ({"target": "10.0.0.1", "port": "6789", "targetIQN": "rbd", "SCSIid": "sr-image"}, "lvmoiscsi"),
    (_iscsi("iqn.2004-04.com.example:storage.lun7", port="3260"), "lvmoiscsi"),
    (_iscsi("iqn.2004-04.com.example:storage.lun7", rbd="true"), "lvmoiscsi"),
    (_iscsi("iqn.2004-04.com.example:storage.lun7"), "nfs"),
], ids=["rbd-sr", "iscsi-3260", "rbd-true", "not-iscsi-type"])
def test_what_is_not_in_the_way(tmpdir, monkeypatch, dconf, sr_type):
    _xapi(tmpdir, monkeypatch, dconf, sr_type)
    root, release = make_env(tmpdir, "flat")
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out


def test_no_xapi_is_said_not_refused(tmpdir, monkeypatch):
    monkeypatch.syspath_prepend(h.XAPI_STUB)
    monkeypatch.setenv(xapicheck.UNDER_ROOT_ENV, "1")

    def down():
        raise OSError("No such file or directory: /var/lib/xcp/xapi")
    monkeypatch.setattr(h.XenAPI, "xapi_local", down)
    root, release = make_env(tmpdir, "flat")
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    assert "XAPI not reachable (OSError)" in out


def test_another_root_is_not_asked_about(tmpdir, monkeypatch):
    _xapi(tmpdir, monkeypatch, _iscsi("iqn.2004-04.com.example:storage.lun7"))
    monkeypatch.delenv(xapicheck.UNDER_ROOT_ENV)
    root, release = make_env(tmpdir, "flat")
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out


def test_genuine_rule():
    assert xapicheck.is_genuine_iscsi(_iscsi("iqn.1-1.x:y"))
    assert not xapicheck.is_genuine_iscsi(_iscsi("rbd/ns"))
    assert not xapicheck.is_genuine_iscsi(_iscsi("iqn.1-1.x:y", port="3260"))
    assert not xapicheck.is_genuine_iscsi(_iscsi("iqn.1-1.x:y", rbd="TRUE"))
    assert xapicheck.is_genuine_iscsi(_iscsi("iqn.1-1.x:y", rbd="false"))
