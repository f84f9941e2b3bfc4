"""RBDTransport's BaseISCSISR surface, as sm's LVHDoISCSISR code reads it
(pure: no sm, no Ceph, no kernel)."""
from rbdsr.config import TargetConfig
from rbdsr.secret import Secret, make_cephx_key
from rbdsr.smglue.transport import LOCAL_IQN, RBDTransport

KEY = make_cephx_key(b"transport-test!!")


def transport(**over):
    d = {"target": "10.0.0.1,10.0.0.2:6790", "port": "6789", "targetIQN": "rbd/tenant",
         "SCSIid": "sr1", "chapuser": "xen", "chappassword": KEY}
    d.update(over)
    d = dict((k, v) for k, v in d.items() if v is not None)
    return RBDTransport(TargetConfig.from_dconf(d), lambda msg: None)


def test_iscsi_attributes_have_rbd_meanings():
    t = transport()
    assert (t.target, t.port) == ("10.0.0.1", 6789)
    assert t.targetlist == "10.0.0.1:6789,10.0.0.2:6790"
    assert t.address == "10.0.0.1:6789"
    assert t.targetIQN == "rbd/tenant"
    assert t.localIQN == LOCAL_IQN and t.localIQN
    assert t.chapuser == "xen"
    assert isinstance(t.chappassword, Secret) and str(t.chappassword) == "<secret>"
    assert t.incoming_chapuser == "" and t.incoming_chappassword == ""
    assert t.adapter == {} and t.LUNs == {}
    assert t.image == "sr1"


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
    text = repr(vars(t))
    assert KEY not in text
