"""`rbdsr clone --introduce` against the XAPI stand-in, with XAPI's own calls and
fields: SR.introduce, PBD.create (one per host, the master's first, each with its own
copy of the secret), PBD.plug, SR.scan. The whole path with real sm (the plug runs the
driver's sr_attach) is in tests/vm/test_admin_realsm.py; here the records, the order,
the printed steps, and what a refused step leaves."""
import uuid

import pytest

from rbdsr.admin import introduce
from rbdsr.admin.xapi import Xapi
from rbdsr.errors import ConfigError
from rbdsr.secret import make_cephx_key
from tests.ceph import adminkit as ak

KEY = make_cephx_key(b"admin-introduce!")


@pytest.fixture
def pool(tmp_path, monkeypatch):
    p = ak.Pool(tmp_path / "xapi.json", hosts=3)
    monkeypatch.setenv("FAKEXAPI_DB", p.path)
    monkeypatch.setenv("FAKEXAPI_SM_DIR", str(tmp_path / "no-sm"))  # no driver: PBD.plug is refused
    (tmp_path / "no-sm").mkdir()
    return p


def golden(pool):
    dconf = {"target": "127.0.0.1", "port": "6789", "targetIQN": "rbd", "SCSIid": "golden",
             "chapuser": "xcpng", "chappassword_secret": pool.add_secret(KEY), "size": "1G"}
    sr = pool.add_sr("golden", dconf)
    # the master (host0) listed last by XAPI: the steps must still start there
    db = ak.XenAPI.load_db(pool.path)
    pbds = sorted(db["PBD"].items(), key=lambda kv: kv[1]["host"] == pool.hosts[0])
    db["PBD"] = dict(pbds)
    ak.XenAPI.save_db(db, pool.path)
    with Xapi(ak.XenAPI) as xs:
        return xs.sr_info(sr)


def host_uuid(pool, i):
    return pool.db["host"][pool.hosts[i]]["uuid"]


def test_printed_steps_master_first_no_key(pool):
    sr = golden(pool)
    new = str(uuid.uuid4())
    lines = introduce.Steps(sr, new, "drill", "drill clone").commands()
    assert lines[0] == ("xe sr-introduce uuid=%s type=lvmoiscsi content-type=user shared=true"
                        " name-label='drill clone'" % new)
    creates = [ln for ln in lines if "pbd-create" in ln]
    assert [c.split("host-uuid=")[1].split()[0] for c in creates][0] == host_uuid(pool, 0)
    assert len(creates) == 3 and all("device-config:SCSIid=drill" in c for c in creates)
    assert all("size" not in c and KEY not in c for c in lines)
    assert lines[-1] == "xe sr-scan uuid=%s" % new


def test_introduce_makes_xapis_records_and_says_what_stays_when_refused(pool):
    sr = golden(pool)
    new = str(uuid.uuid4())
    said = []
    with Xapi(ak.XenAPI) as xs:
        with pytest.raises(ConfigError) as e:
            introduce.Steps(sr, new, "drill", "drill clone").run(xs, said.append)
    # the plug ran the SR type's driver, which this stand-in pool has not: XAPI's refusal,
    # said clearly, and what is done (the SR record, the master's PBD) stays for the admin
    assert "SR_UNKNOWN_DRIVER" in str(e.value) and "xe sr-list uuid=%s" % new in str(e.value)
    assert said == ["introduced SR %s" % new]
    db = ak.XenAPI.load_db(pool.path)
    (ref, rec), = [(r, v) for r, v in db["SR"].items() if v["uuid"] == new]
    assert (rec["type"], rec["content_type"], rec["shared"], rec["name_label"]) == \
        ("lvmoiscsi", "user", True, "drill clone")
    pbds = [p for p in db["PBD"].values() if p["SR"] == ref]
    assert len(pbds) == 1 and pbds[0]["host"] == pool.hosts[0] and not pbds[0]["currently_attached"]
    dc = pbds[0]["device_config"]
    assert dc["SCSIid"] == "drill" and "size" not in dc and "chappassword" not in dc
    # XAPI gave the new PBD its own copy of the secret
    assert dc["chappassword_secret"] != sr.dconf["chappassword_secret"]
    assert [s["value"] for s in db["secret"].values() if s["uuid"] == dc["chappassword_secret"]] == [KEY]


def test_introduce_refuses_an_sr_uuid_in_use(pool):
    sr = golden(pool)
    with Xapi(ak.XenAPI) as xs:
        with pytest.raises(ConfigError) as e:
            introduce.Steps(sr, sr.uuid, "drill", "again").run(xs, lambda m: None)
    assert "SR_UUID_EXISTS" in str(e.value)
    assert len(ak.XenAPI.load_db(pool.path)["PBD"]) == 3  # nothing made
