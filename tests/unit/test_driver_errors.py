"""Error mapping: every RBDError reaches XAPI as the XenError of its key (the
right sm error number), anything else as SMGeneral; never a traceback, never a
secret. Checked on sm's (stand-in) modules in a child process, and through the
entry point for invalid device-config."""
import json
import subprocess
import sys

import pytest

import driverharness as h
from rbdsr import errors
from rbdsr.secret import make_cephx_key

KEY = make_cephx_key(b"errors-test-key!")

SCRIPT = r'''
import json, sys
from rbdsr.smglue import driver
from rbdsr import errors
from rbdsr.smglue import shim

class Fake(object):
    uuid = "u"

out = {}
cases = [(name, getattr(errors, name)) for name in
         ("RBDError", "ConfigError", "AuthError", "UnreachableError", "CephError", "NotFoundError",
          "InUseError", "MapError", "TimeoutError_")]
for name, cls in cases:
    @driver.sm_errors("op")
    def op(self, cls=cls):
        raise cls("message for %s" % cls.__name__)
    try:
        op(Fake())
    except shim.xs_errors.SRException as e:
        out[name] = [e.errno, str(e), cls.key]
for key in ("DNSError", "InvalidSecret", "ConfigTargetIQNMissing", "ISCSIPort"):
    @driver.sm_errors("op")
    def op2(self, key=key):
        raise errors.ConfigError("keyed " + key, key=key)
    try:
        op2(Fake())
    except shim.xs_errors.SRException as e:
        out["key:" + key] = [e.errno, str(e), key]

@driver.sm_errors("op")
def boom(self):
    raise ValueError("plain bug")
try:
    boom(Fake())
except shim.xs_errors.SRException as e:
    out["ValueError"] = [e.errno, str(e), "SMGeneral"]

@driver.sm_errors("op")
def passthrough(self):
    raise shim.xs_errors.XenError("SRNotEmpty")
try:
    passthrough(Fake())
except shim.xs_errors.SRException as e:
    out["XenError"] = [e.errno, str(e), "SRNotEmpty"]
print(json.dumps(out))
'''


@pytest.fixture(params=["flat", "package"], scope="module")
def tree(request, tmp_path_factory):
    return h.SMTree(str(tmp_path_factory.mktemp("err-" + request.param)), request.param)


def test_mapping_of_each_error_class(tree):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=tree.env())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    res = json.loads(out)
    numbers = dict(errors.XENERROR_KEYS, SRNotEmpty=39)
    assert len(res) == 15
    for name, (errno_, message, key) in res.items():
        assert errno_ == numbers[key], (name, errno_, key)
        if name == "ValueError":
            assert "ValueError: plain bug" in message
        elif name.startswith("key:"):
            assert "keyed " + key in message
        elif name != "XenError":
            assert "message for " + name in message
    smlog = tree.read_smlog()
    assert "plain bug" in smlog and "Traceback" not in out


BAD = [
    # (what, device-config changes, expected sm error number)
    ("target missing", {"target": None}, 95),
    ("target bad", {"target": "mon;reboot"}, 95),
    ("msgr2 port on a monitor", {"target": "127.0.0.1:3300"}, 95),
    ("pool bad", {"targetIQN": "iqn.2004-04.com.example:x"}, 96),
    ("pool 3 parts", {"targetIQN": "a/b/c"}, 96),
    ("image bad", {"SCSIid": "a b"}, 107),
    ("image @", {"SCSIid": "img@snap"}, 107),
    ("key bad", {"chappassword": "not-a-key"}, 1),
    ("user bad", {"chapuser": "admin,secret=x"}, 1),
    ("size bad", {"size": "huge"}, 1),
    ("timeout bad", {"timeout": "0"}, 1),
    ("delete_image bad", {"delete_image": "maybe"}, 1),
    ("secret uuid bad", {"chappassword": None, "chappassword_secret": "nope"}, 20),
    ("secret missing in XAPI", {"chappassword": None,
                                "chappassword_secret": "0f8fad5b-d9cb-469f-a165-70867728950e"}, 20),
]


def _dconf(changes):
    d = {"target": "127.0.0.1", "port": "6789", "targetIQN": "rbd", "SCSIid": "img",
         "chapuser": "admin", "chappassword": KEY}
    return h.edited(d, changes)


@pytest.mark.parametrize("what,changes,code", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("command", ["sr_probe", "sr_create", "sr_attach"])
def test_bad_device_config_through_the_entry_point(tree, what, changes, code, command):
    sr_uuid = h.new_uuid()
    dconf = _dconf(changes)
    refs = tree.seed(sr_uuid=sr_uuid, device_config=dconf)
    if command == "sr_probe":
        call = h.method_call(command, dict(dconf, SRmaster="true"), host_ref=refs["hosts"][0])
    else:
        call = h.method_call(command, dict(dconf, SRmaster="true"), sr_uuid=sr_uuid, sr_ref=refs["sr"],
                             host_ref=refs["hosts"][0], args=["0"] if command == "sr_create" else [])
    r = tree.run(call)
    assert r.fault_code == code, r
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stderr == ""  # nothing printed for a wizard step: the input was refused first
    assert KEY not in r.smlog + r.stdout + r.stderr
    assert "device-config" in r.fault_string or code == 20


# A cephx key pasted into the wrong wizard field (a key whose base64 has no '/'
# passes the name characters check, so it must be refused for its shape).
MISPLACED = next(k for k in (make_cephx_key(bytes([i]) * 16) for i in range(1, 256)) if "/" not in k)


@pytest.mark.parametrize("field", ["target", "targetIQN", "SCSIid", "chapuser"])
@pytest.mark.parametrize("command", ["sr_probe", "sr_attach"])
def test_key_in_the_wrong_field_is_never_echoed(tree, field, command):
    sr_uuid = h.new_uuid()
    dconf = _dconf({field: MISPLACED})
    refs = tree.seed(sr_uuid=sr_uuid, device_config=dconf)
    call = h.method_call(command, dict(dconf, SRmaster="true"), sr_uuid=sr_uuid if command != "sr_probe" else None,
                         sr_ref=refs["sr"] if command != "sr_probe" else None, host_ref=refs["hosts"][0])
    r = tree.run(call)
    assert r.fault_code is not None and "Traceback" not in r.stdout + r.stderr, r
    assert MISPLACED not in r.fault_string + r.stdout + r.stderr
    # sm's SRCommand logs the call's parameters itself (masking only chappassword):
    # that line is sm's; no RBDSR line may quote the key
    ours = [ln for ln in r.smlog.splitlines() if "RBDSR" in ln]
    assert ours and not [ln for ln in ours if MISPLACED in ln], ours
