"""RBDTransport: what RBDSR's own overrides use, and proof from the four real
sm trees that sm itself reads nothing else from it (pure: no sm import, no
Ceph, no kernel)."""
import ast
import os

import pytest

from rbdsr.config import TargetConfig
from rbdsr.credentials import Credentials
from rbdsr.secret import make_cephx_key
from rbdsr.smglue.transport import RBDTransport

KEY = make_cephx_key(b"transport-test!!")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SM = os.path.join(os.path.dirname(REPO), "shared", "sm")
ISCSI_DRIVERS = {
    "xcpng-8.3": "drivers/LVMoISCSISR.py",
    "xcpng-8.3-2025": "drivers/LVHDoISCSISR.py",
    "xs8": "drivers/LVHDoISCSISR.py",
    "xapi-master": "libs/sm/drivers/LVHDoISCSISR.py",
}


def transport(**over):
    d = {"target": "10.0.0.1,10.0.0.2:6790", "port": "6789", "targetIQN": "rbd/tenant",
         "SCSIid": "sr1", "chapuser": "xen", "chappassword": KEY}
    d.update(over)
    d = dict((k, v) for k, v in d.items() if v is not None)
    return RBDTransport(TargetConfig.from_dconf(d), lambda msg: None)


def test_identity_and_credentials_resolved_once():
    t = transport()
    assert t.targetIQN == "rbd/tenant" and t.image == "sr1"
    creds = t.credentials()
    assert isinstance(creds, Credentials)
    assert (creds.cephx_id, creds.key.reveal(), creds.source) == ("xen", KEY, "device-config")
    assert t.credentials() is creds  # once per operation


def test_no_iscsi_impersonation_left():
    t = transport()
    for name in ("target", "port", "targetlist", "localIQN", "chapuser", "chappassword", "incoming_chapuser",
                 "incoming_chappassword", "adapter", "address", "LUNs", "multihomed", "print_LUNs"):
        assert not hasattr(t, name), name


def test_paths_are_the_stable_rbd_paths():
    t = transport()
    assert t.device_path() == "/dev/disk/by-id/rbdsr/rbd/tenant/sr1"
    assert t.path == "/dev/disk/by-id/rbdsr/rbd/tenant"
    t2 = transport(targetIQN="rbd", SCSIid="img")
    assert t2.device_path() == "/dev/disk/by-id/rbdsr/rbd/-/img"


def test_without_image_nothing_to_map():
    t = transport(SCSIid=None)
    assert t.cfg.image is None
    assert t.path == "/dev/disk/by-id/rbdsr/rbd/tenant"
    assert t.attached is False
    t.attach("sr")  # no image (a probe): nothing to map, no error
    t.detach("sr")


def test_key_never_in_repr_of_the_transport_fields():
    t = transport()
    t.credentials()
    text = repr(vars(t))
    assert KEY not in text


def _methods(path, cls_prefix):
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith(cls_prefix) and not node.name.endswith("VDI"):
            return dict((m.name, m) for m in node.body if isinstance(m, ast.FunctionDef))
    raise AssertionError("no class %s* in %s" % (cls_prefix, path))


def _touches_transport(fn):
    for node in ast.walk(fn):
        if isinstance(node, ast.Attribute) and node.attr in ("iscsi", "iscsiSRs") and \
                isinstance(node.value, ast.Name) and node.value.id == "self":
            return True
    return False


def _calls(fn):
    return set(n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)
               and isinstance(n.value, ast.Name) and n.value.id == "self")


@pytest.mark.parametrize("tree", sorted(ISCSI_DRIVERS))
def test_real_sm_reads_the_transport_only_from_methods_rbdsr_overrides(tree):
    path = os.path.join(SM, tree, ISCSI_DRIVERS[tree])
    assert os.path.isfile(path), "real sm tree missing: %s" % path
    sm = _methods(path, "LV")
    ours = set(_methods(os.path.join(REPO, "rbdsr", "smglue", "driver.py"), "RBDSR"))
    touching = set(name for name, fn in sm.items() if _touches_transport(fn))
    assert touching, "the sm driver should use self.iscsi somewhere"
    # a method not overridden may only touch the transport when every sm caller of it is overridden
    for name in sorted(touching - ours):
        callers = [c for c, fn in sm.items() if name in _calls(fn)]
        assert all(c in ours for c in callers), (name, callers)
