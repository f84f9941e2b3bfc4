"""The SR's whole life through the driver's real entry point (sm's LVMoISCSISR
script with the RBDSR hook, as XAPI runs it) in the VM: real kernel RBD
client, real LVM, real Ceph.

probe -> create -> attach -> VDI write -> detach -> re-attach sees the data ->
a second host attaches while the first holds it -> HA config round trip ->
grow -> delete (image kept, then removed); and sr_create refusing images that
hold another VG or data, leaving them untouched.
"""
import os
import shutil
import uuid
import xml.dom.minidom
import xmlrpc.client

import pytest

import driverharness as h
from krbd_helpers import MIB, pattern, pread_direct, pwrite_direct
from lvm_helpers import lvmconf, pv
from lvm_helpers.cmd import run as lvm
from rbdsr import krbd
from rbdsr.smglue import probexml

OWNER = "rbdsr.sr_uuid"
MASTER_LVM = "/etc/lvm/master"


@pytest.fixture(scope="module")
def lvm_dirs(tmp_path_factory):
    """What the installer sets up on dom0: rbd in the devices types of the master
    LVM config (sm sets LVM_SYSTEM_DIR=/etc/lvm/master on the SR master) and of the
    config slaves use (here a private copy, so /etc/lvm/lvm.conf stays as it is)."""
    created = not os.path.exists(MASTER_LVM)
    slave = str(tmp_path_factory.mktemp("lvm-slave"))
    shutil.rmtree(slave)
    shutil.copytree("/etc/lvm", slave, symlinks=True, ignore=shutil.ignore_patterns("master"))
    for d in ([MASTER_LVM] if created else []) + [slave]:
        if d == MASTER_LVM:
            os.makedirs(d)
            shutil.copy("/etc/lvm/lvm.conf", d)
        conf = os.path.join(d, "lvm.conf")
        with open(conf) as f:
            text = f.read()
        if not lvmconf.has_rbd_types(conf):
            with open(conf, "w") as f:
                f.write(lvmconf.add_rbd_types(text))
    yield slave
    if created:
        shutil.rmtree(MASTER_LVM, ignore_errors=True)


@pytest.fixture(params=["flat", "package"])
def tree(request, tmp_path, lvm_dirs, monkeypatch, vm_results_dir):
    # the test's own LVM calls and the slave runs use the slave config; master runs
    # switch to /etc/lvm/master themselves (sm's SR.__init__)
    monkeypatch.setenv("LVM_SYSTEM_DIR", lvm_dirs)
    t = h.SMTree(str(tmp_path / "sm"), request.param)
    t.slave_env = {"LVM_SYSTEM_DIR": lvm_dirs}
    yield t
    # keep the driver's log with the results
    if os.path.exists(t.smlog):
        shutil.copy(t.smlog, os.path.join(vm_results_dir, "SMlog-%s" % request.node.name))


def new_image(ceph, tag):
    return "h5-%s-%s" % (tag, uuid.uuid4().hex[:6])


def meta(ceph, name, key=OWNER):
    import rbd
    with rbd.Image(ceph.ioctx(), name, read_only=True) as img:
        try:
            return img.metadata_get(key)
        except KeyError:
            return None


def image_size(ceph, name):
    import rbd
    with rbd.Image(ceph.ioctx(), name, read_only=True) as img:
        return img.size()


def image_exists(ceph, name):
    import rbd
    return name in rbd.RBD().list(ceph.ioctx())


class SR(object):
    """One SR's XAPI records and the calls XAPI makes for it."""

    def __init__(self, tree, ceph, image, hosts=2, **dconf_extra):
        self.tree = tree
        self.ceph = ceph
        self.image = image
        self.uuid = h.new_uuid()
        self.key = ceph.key.reveal()
        secrets = [self.key]
        dconf = {"target": ceph.mon_addr, "port": "6789", "targetIQN": ceph.pool, "SCSIid": image,
                 "chapuser": "admin", "timeout": "60"}
        dconf.update(dconf_extra)
        self.refs = tree.seed(sr_uuid=self.uuid, device_config={}, secrets=secrets, extra_hosts=hosts - 1)
        dconf["chappassword_secret"] = self.refs["secrets"][self.key]
        self.dconf = dconf
        db = h.XenAPI.load_db(tree.db)
        for pbd in db["PBD"].values():
            pbd["device_config"] = dict(dconf)
        h.XenAPI.save_db(db, tree.db)

    def call(self, command, host=0, args=None, vdi=None, dconf=None, expect_ok=True, **kw):
        master = host == 0
        dc = dict(dconf if dconf is not None else self.dconf)
        if master:
            dc["SRmaster"] = "true"
        c = h.method_call(command, dc, sr_uuid=self.uuid, sr_ref=self.refs["sr"],
                          host_ref=self.refs["hosts"][host], args=args, vdi_uuid=vdi, **kw)
        r = self.tree.run(c, env=None if master else self.tree.slave_env, timeout=600)
        out = r.stdout + r.stderr
        assert "Traceback" not in out, r
        # vdi_generate_config returns the key to XAPI on purpose (sm does the same: the HA
        # config must attach without a session); it must still never be logged.
        seen = r.smlog + (r.stderr if command == "vdi_generate_config" else out)
        assert self.key not in seen, "cephx key leaked by %s" % command
        if expect_ok:
            assert r.ok, (command, r)
        return r

    def probe(self, dconf):
        c = h.method_call("sr_probe", dict(dconf), host_ref=self.refs["hosts"][0])
        return self.tree.run(c, timeout=600)

    def sr_record(self):
        db = h.XenAPI.load_db(self.tree.db)
        return db["SR"][self.refs["sr"]]

    def image_id(self):
        return krbd.ImageId(self.ceph.fsid, self.ceph.pool, "", self.image)

    def mapped(self):
        return krbd.find_mapped(self.image_id()) is not None

    @property
    def vg(self):
        return "VG_XenStorage-" + self.uuid


def srlist_uuids(xml_text):
    doc = xml.dom.minidom.parseString(xml_text)
    return [n.firstChild.data.strip() for n in doc.getElementsByTagName("UUID")]


def test_full_lifecycle(tree, ceph):
    image = new_image(ceph, "life")
    sr = SR(tree, ceph, image)
    probe_dconf = dict(sr.dconf, chappassword=sr.key)
    del probe_dconf["chappassword_secret"]

    # wizard step 3 on an image that does not exist yet: no SR, nothing created
    r = sr.probe(probe_dconf)
    assert r.ok, r
    assert srlist_uuids(r.value) == [] and not image_exists(ceph, image)

    # sr_create makes the image (layering only), tags it, puts our VG on it, unmaps
    sr.call("sr_create", args=[str(256 * MIB)])
    assert image_size(ceph, image) == 256 * MIB
    assert meta(ceph, image) == sr.uuid
    import rbd
    with rbd.Image(ceph.ioctx(), image, read_only=True) as img:
        assert img.features() == rbd.RBD_FEATURE_LAYERING
    assert not sr.mapped()
    assert b"LABELONE" in ceph.read(image, 0, 4096)

    # the wizard now finds the SR on the image (step 3), and the image in the LUN list (step 2)
    r = sr.probe(probe_dconf)
    assert r.ok and srlist_uuids(r.value) == [sr.uuid], r
    assert not sr.mapped()
    step2 = dict(probe_dconf)
    del step2["SCSIid"]
    r = sr.probe(step2)
    assert r.fault_code == 107
    lun = [x for x in probexml.parse_luns(r.stderr) if x["SCSIid"] == image]
    assert lun and lun[0]["size"] == str(256 * MIB)
    assert lun[0]["serial"] == probexml.stable_serial(ceph.fsid, ceph.pool, "", image)

    # attach on the master: mapped, VG there, devserial recorded, size reported
    sr.call("sr_attach")
    assert sr.mapped()
    assert lvm(["vgs", sr.vg]).rc == 0
    rec = sr.sr_record()
    assert rec["sm_config"]["devserial"] == "rbd-" + probexml.stable_serial(ceph.fsid, ceph.pool, "", image)
    assert 200 * MIB < int(rec["physical_size"]) <= 256 * MIB

    # a VDI: create, attach, write through the LV, detach
    vdi = h.new_uuid()
    sr.call("vdi_create", vdi=vdi, args=[str(32 * MIB), "disk", "", "", "false", "", "", "false"],
            extra={"vdi_type": "user"})
    r = sr.call("vdi_attach", vdi=vdi, args=["true"])
    lv = r.value["params"] if isinstance(r.value, dict) else xmlrpc.client.loads(r.value)[0][0]["params"]
    data = pattern("lifecycle", 1 * MIB)
    pwrite_direct(lv, 4 * MIB, data)
    sr.call("vdi_detach", vdi=vdi)

    # detach: LVs gone, unmapped
    sr.call("sr_detach")
    assert not sr.mapped()

    # re-attach sees the data
    sr.call("sr_attach")
    r = sr.call("vdi_attach", vdi=vdi, args=["true"])
    lv = r.value["params"] if isinstance(r.value, dict) else xmlrpc.client.loads(r.value)[0][0]["params"]
    assert pread_direct(lv, 4 * MIB, len(data)) == data

    # a second host attaches while the first holds the SR with an active VDI
    seqno = lvm(["vgs", "--noheadings", "-o", "vg_seqno", sr.vg]).out.strip()
    sr.call("sr_attach", host=1)
    assert lvm(["vgs", "--noheadings", "-o", "vg_seqno", sr.vg]).out.strip() == seqno  # slaves never write LVM metadata
    assert pread_direct(lv, 4 * MIB, len(data)) == data
    sr.call("vdi_detach", vdi=vdi)

    # HA: the generated config attaches the VDI without a XAPI session
    r = sr.call("vdi_generate_config", vdi=vdi)
    (config,), method = xmlrpc.client.loads(r.value)
    assert method == "vdi_attach_from_config"
    dc = config["device_config"]
    assert "localIQN" not in dc and "SRmaster" not in dc
    assert dc["chappassword"] == sr.key and "chappassword_secret" not in dc
    assert dc["SCSIid"] == image and dc["targetIQN"] == ceph.pool
    assert "session_ref" not in config and "sr_ref" not in config
    r = tree.run(xmlrpc.client.dumps((config,), "vdi_attach_from_config"), timeout=600)
    assert r.ok, r
    assert sr.key not in r.smlog
    sr.call("vdi_detach", vdi=vdi)

    # grow: the image grows in Ceph, sr_scan grows the PV and reports it
    ceph.resize(image, 512 * MIB)
    sr.call("sr_scan")
    size = int(sr.sr_record()["physical_size"])
    assert 460 * MIB < size <= 512 * MIB, size
    assert int(pv.pv_size(os.path.realpath(krbd.stable_path(sr.image_id())))) > 460 * MIB
    sr.call("sr_update")

    # delete: VDI, detach, SR (the image stays, blank and reusable), then with delete_image
    sr.call("vdi_delete", vdi=vdi)
    sr.call("sr_detach")
    sr.call("sr_delete")
    assert image_exists(ceph, image) and not sr.mapped()
    assert ceph.read(image, 0, 1 * MIB) == bytes(1 * MIB)
    assert lvm(["vgs", sr.vg], check=False).rc != 0

    # the blank image takes a new SR at once, which then goes away with its image
    sr2 = SR(tree, ceph, image, hosts=1, delete_image="true")
    sr2.call("sr_create", args=["0"])
    assert meta(ceph, image) == sr2.uuid
    sr2.call("sr_delete")
    assert not image_exists(ceph, image)
    assert not sr2.mapped()


def _assert_refused(tree, ceph, image, before):
    sr = SR(tree, ceph, image, hosts=1)
    r = sr.call("sr_create", args=["0"], expect_ok=False)
    assert r.fault_code == 16, r  # SRInUse
    assert not sr.mapped()
    assert ceph.read(image, 0, 4 * MIB) == before
    assert meta(ceph, image) is None
    return r


def test_create_refuses_an_image_holding_another_vg(tree, ceph):
    image = new_image(ceph, "othervg")
    ceph.create(image, 128 * MIB)
    iid = krbd.ImageId(ceph.fsid, ceph.pool, "", image)
    dev = krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=60)
    try:
        lvm(["pvcreate", "-y", dev.stable_path])
        lvm(["vgcreate", "-y", "h5_other", dev.stable_path])
        lvm(["vgchange", "-an", "h5_other"])
    finally:
        krbd.unmap(iid, timeout=60)
    before = ceph.read(image, 0, 4 * MIB)
    r = _assert_refused(tree, ceph, image, before)
    assert "h5_other" in r.fault_string and "only formats a blank image" in r.fault_string
    ceph.remove(image)


def test_create_refuses_an_image_with_data(tree, ceph):
    image = new_image(ceph, "data")
    ceph.create(image, 128 * MIB)
    ceph.write(image, 0, b"precious data" * 315)
    before = ceph.read(image, 0, 4 * MIB)
    r = _assert_refused(tree, ceph, image, before)
    assert "data" in r.fault_string
    ceph.remove(image)
