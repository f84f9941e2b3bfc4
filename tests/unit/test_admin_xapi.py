"""The admin command's way to an SR through XAPI (the stand-in): by uuid or
name-label, secrets resolved, and refusals for what is not an RBD SR - all
before any Ceph connection."""
import uuid

import pytest

from rbdsr.admin.xapi import Xapi
from rbdsr.errors import ConfigError, NotFoundError
from rbdsr.secret import make_cephx_key
from tests.ceph import adminkit as ak

KEY = make_cephx_key(b"admin-xapi-test!")


@pytest.fixture
def pool(tmp_path, monkeypatch):
    p = ak.Pool(tmp_path / "xapi.json", hosts=2)
    monkeypatch.setenv("FAKEXAPI_DB", p.path)
    return p


def dconf(secret, **over):
    d = {"target": "127.0.0.1", "port": "6789", "targetIQN": "rbd", "SCSIid": "img",
         "chapuser": "xcpng", "chappassword_secret": secret}
    d.update(over)
    return dict((k, v) for k, v in d.items() if v is not None)


def sr_info(ident):
    with Xapi(ak.XenAPI) as xs:
        return xs.sr_info(ident)


def test_by_uuid_and_name_with_secret_read(pool):
    sr = pool.add_sr("ceph", dconf(pool.add_secret(KEY)), attached=True)
    for ident in (sr, "ceph"):
        info = sr_info(ident)
        assert info.uuid == sr and info.cfg.image == "img" and info.cfg.key.reveal() == KEY
        assert sorted(info.attached_hosts()) == ["host0", "host1"]
    assert KEY not in repr(info.cfg.key) and KEY not in str(info.cfg.key)


@pytest.mark.parametrize("make, ident, error, fragment", [
    (lambda p: None, "nope", NotFoundError, "no SR named 'nope'"),
    (lambda p: None, str(uuid.UUID(int=1)), NotFoundError, "no SR with uuid"),
    (lambda p: [p.add_sr("twin", dconf(p.add_secret(KEY))) for _ in range(2)], "twin", ConfigError,
     "2 SRs are named 'twin'"),
    (lambda p: p.add_sr("iscsi", dconf(p.add_secret(KEY), port="3260")), "iscsi", ConfigError,
     "plain iSCSI SR"),
    (lambda p: p.add_sr("noimg", dconf(p.add_secret(KEY), SCSIid=None)), "noimg", ConfigError, "no SCSIid"),
    (lambda p: p.add_sr("nosecret", dconf(str(uuid.UUID(int=2)))), "nosecret", ConfigError,
     "cannot read secret"),
])
def test_refusals(pool, make, ident, error, fragment):
    make(pool)
    with pytest.raises(error) as e:
        sr_info(ident)
    assert fragment in str(e.value)


def test_other_sr_type_refused(pool):
    sr = pool.add_sr("nfs", dconf(pool.add_secret(KEY)))
    pool.db["SR"][[r for r, v in pool.db["SR"].items() if v["uuid"] == sr][0]]["type"] = "nfs"
    pool.save()
    with pytest.raises(ConfigError) as e:
        sr_info(sr)
    assert "not an RBD SR" in str(e.value)
