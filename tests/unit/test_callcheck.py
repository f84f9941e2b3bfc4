"""rbdsr.callcheck: the XML-RPC call's own fields (sr_uuid, vdi_uuid,
vdi_location, args, command) and secrets in fields that are not secret fields.
The messages never carry the value (it may be a secret or 10 KB of junk)."""
import pytest

import driverharness as h

from rbdsr import callcheck
from rbdsr.errors import ConfigError
from rbdsr.secret import make_cephx_key

KEY = make_cephx_key(b"callcheck-key-16")
SR = "7d3c5b2e-4f61-4a8e-9c0d-1b2a3c4d5e6f"
VDI = "2f0c1f5e-8a5b-4c1e-9a57-3b8f7f4c1d20"


def call(command, **changes):
    p = {"command": command, "device_config": {"target": "10.0.0.1", "port": "6789", "targetIQN": "rbd",
                                               "SCSIid": "img", "chappassword": KEY},
         "session_ref": "OpaqueRef:s", "host_ref": "OpaqueRef:h", "sr_uuid": SR, "args": []}
    if command.startswith("vdi_"):
        p.update(vdi_uuid=VDI, vdi_location=VDI)
    return h.edited(p, changes)


@pytest.mark.parametrize("command,changes", [
    ("sr_attach", {}), ("sr_probe", {"sr_uuid": None}), ("sr_create", {"args": ["0"]}),
    ("sr_create", {"args": [str(1 << 40)]}), ("vdi_create", {"vdi_uuid": None, "vdi_location": None,
                                                          "args": ["1073741824", "d", "", "", "false", "", "",
                                                                   "false"]}),
    ("vdi_introduce", {"vdi_uuid": None, "new_uuid": VDI}),
    ("vdi_resize", {"args": ["2147483648"]}), ("vdi_attach_from_config", {"vdi_location": None,
                                                                          "session_ref": None}),
])
def test_what_xapi_sends_passes(command, changes):
    callcheck.check(command, call(command, **changes))


def test_sm_from_uuid_nop_passes():
    # SR.from_uuid (sr_health_check, tapdisk-pause): no method name, command 'nop'
    callcheck.check(None, call("nop"))


@pytest.mark.parametrize("command,method,changes,key", [
    ("sr_attach", "sr_attach", {"sr_uuid": "../../../tmp/x"}, "InvalidArg"),
    ("sr_attach", "sr_attach", {"sr_uuid": SR + "\n"}, "InvalidArg"),
    ("sr_attach", "sr_attach", {"sr_uuid": 42}, "InvalidArg"),
    ("sr_attach", "sr_attach", {"sr_uuid": None}, "InvalidArg"),
    ("sr_create", "sr_create", {"sr_uuid": "", "args": ["0"]}, "InvalidArg"),
    ("vdi_delete", "vdi_delete", {"vdi_uuid": "x" * 10240}, "InvalidArg"),
    ("vdi_delete", "vdi_delete", {"vdi_location": "../" + VDI}, "InvalidArg"),
    ("vdi_delete", "vdi_delete", {"vdi_uuid": None}, "InvalidArg"),
    ("vdi_introduce", "vdi_introduce", {"vdi_uuid": None, "new_uuid": "../x"}, "InvalidArg"),
    ("sr_create", "sr_create", {"args": ["-1"]}, "InvalidArg"),
    ("sr_create", "sr_create", {"args": ["1e12"]}, "InvalidArg"),
    ("sr_create", "sr_create", {"args": [str(1 << 51)]}, "InvalidArg"),
    ("sr_create", "sr_create", {"args": []}, "InvalidArg"),
    ("sr_create", "sr_create", {"args": "1024"}, "InvalidArg"),
    ("sr_create", "sr_create", {"args": [1024]}, "InvalidArg"),
    ("vdi_create", "vdi_create", {"vdi_uuid": None, "args": ["-5"]}, "VDISize"),
    ("vdi_resize", "vdi_resize", {"args": ["twice"]}, "VDISize"),
    ("sr_delete", "sr_probe", {}, "BadRequest"),
    ("sr_attach", None, {}, "BadRequest"),
])
def test_hostile_fields_are_refused_without_echo(command, method, changes, key):
    p = call(command, **changes)
    with pytest.raises(ConfigError) as e:
        callcheck.check(method, p)
    assert e.value.key == key
    for value in changes.values():
        if isinstance(value, str) and len(value) > 4:
            assert value not in str(e.value)


@pytest.mark.parametrize("where,mutate,key", [
    ("SCSIid", lambda p: p["device_config"].update(SCSIid=KEY), "ConfigSCSIid"),
    ("target", lambda p: p["device_config"].update(target=KEY), "ConfigTargetMissing"),
    ("secret uuid", lambda p: p["device_config"].update(chappassword_secret=KEY), "InvalidSecret"),
    ("inside a value", lambda p: p["device_config"].update(ssh_host="x%sy" % KEY), "InvalidArg"),
    ("sr_uuid", lambda p: p.update(sr_uuid=KEY), "InvalidArg"),
    ("args", lambda p: p.update(args=[KEY]), "InvalidArg"),
    ("sm_config value", lambda p: p.update(sr_sm_config={"n": [KEY]}), "InvalidArg"),
    ("sm_config key", lambda p: p.update(sr_sm_config={KEY: "x"}), "InvalidArg"),
    ("host_ref", lambda p: p.update(host_ref=KEY), "InvalidArg"),
    ("password in a field", lambda p: p["device_config"].update(chappassword="hunter2-long-password",
                                                                 ssh_host="hunter2-long-password"), "InvalidArg"),
])
def test_a_secret_outside_chappassword_is_refused_unnamed(where, mutate, key):
    p = call("sr_attach")
    mutate(p)
    with pytest.raises(ConfigError) as e:
        callcheck.check("sr_attach", p)
    assert e.value.key == key, where
    assert KEY not in str(e.value) and "hunter2" not in str(e.value)


def test_shown_uuid():
    assert callcheck.shown_uuid(SR) == SR
    assert callcheck.shown_uuid("") == "(probe)"
    assert callcheck.shown_uuid(KEY) == "(not a uuid)"
    assert callcheck.shown_uuid(7) == "(not a uuid)"
