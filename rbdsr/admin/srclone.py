"""Give a cloned SR image its own identity, so it can be attached beside its
parent on the same hosts: new PV and VG uuids, VG name VG_XenStorage-<new SR>,
new VDI uuids (LV names and MGT records), parent references inside VHD/QCOW2
volumes, and the SR uuid in the MGT volume.

Every LVM command here sees the clone's device and nothing else (a --config
filter), so the parent's identical VG, attached on this host or not, is never
touched nor confused with it; the clone's LVs are activated only after the VG
has its new name, so no device-mapper name collides with the parent's."""
import os
import re
import uuid as uuidmod

from lvm_helpers import cmd as lvmcmd
from rbdsr.admin import mgt, vhdparent
from rbdsr.errors import RBDError

VG_PREFIX = "VG_XenStorage-"
MGT_LV = "MGT"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VDI_LV_RE = re.compile(r"\A(VHD|LV|QCOW2)-(%s)\Z" % _UUID)
MGT_MAX = 4 << 20


class CloneError(RBDError):
    key = "SMGeneral"


def only_device_config(dev):
    """--config text under which LVM sees `dev` alone (any device type). It scans /dev:
    dom0's shipped lvm.conf scans /dev/disk/by-id only (CA-410086), where the clone, mapped
    by this command, has no link; the filters then keep every other device out."""
    real = os.path.realpath(dev)
    return ('devices { scan = [ "/dev" ] filter = [ "a|^%s$|", "r|.*|" ] global_filter = [ "a|^%s$|", "r|.*|" ] '
            'types = [ "rbd", 1024 ] obtain_device_list_from_udev = 0 }' % (real, real))


class Lvm(object):
    def __init__(self, dev, timeout):
        self.conf = only_device_config(dev)
        self.timeout = timeout

    def run(self, *argv):
        return lvmcmd.run([argv[0], "--config", self.conf] + list(argv[1:]), self.timeout)

    def vg_of_device(self):
        res = self.run("pvs", "--noheadings", "-o", "vg_name")
        names = [ln.strip() for ln in res.out.splitlines() if ln.strip()]
        return names[0] if len(names) == 1 else None

    def lvs(self, vg):
        res = self.run("lvs", "--noheadings", "-o", "lv_name", vg)
        return [ln.strip() for ln in res.out.splitlines() if ln.strip()]


def dm_path(vg, lv):
    return "/dev/mapper/%s-%s" % (vg.replace("-", "--"), lv.replace("-", "--"))


class _Volume(object):
    """An activated LV opened for pread/pwrite."""

    def __init__(self, lvm, vg, lv):
        self.lvm, self.vg, self.lv = lvm, vg, lv

    def __enter__(self):
        self.lvm.run("lvchange", "-ay", "%s/%s" % (self.vg, self.lv))
        self.fd = os.open(dm_path(self.vg, self.lv), os.O_RDWR)
        return self

    def read(self, offset, n):
        return os.pread(self.fd, n, offset)

    def write(self, offset, data):
        if os.pwrite(self.fd, data, offset) != len(data):
            raise CloneError("short write to %s/%s" % (self.vg, self.lv))

    def __exit__(self, *exc):
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.lvm.run("lvchange", "-an", "%s/%s" % (self.vg, self.lv))
        return False


def new_identity(dev, old_sr, new_sr, timeout=60.0, say=None, new_uuid=None):
    """Rename everything on the clone device `dev` from SR old_sr to SR new_sr.
    Returns {old VDI uuid: new VDI uuid}."""
    say = say or (lambda msg: None)
    new_uuid = new_uuid or (lambda: str(uuidmod.uuid4()))
    lvm = Lvm(dev, timeout)
    old_vg, new_vg = VG_PREFIX + old_sr, VG_PREFIX + new_sr
    found = lvm.vg_of_device()
    if found != old_vg:
        raise CloneError("the clone's device %s holds %s, not the SR's VG %s: refusing to rename it"
                         % (dev, found or "no volume group", old_vg))
    # vgimportclone (lvm2 >= 2.02.152 has it in C, as dom0's 2.02.180 does) gives the PV and VG
    # new uuids and the new name without asking whether LVs are active: the parent's identical
    # dm uuids, when it is attached here, would make vgchange --uuid refuse
    lvm.run("vgimportclone", "--basevgname", new_vg, os.path.realpath(dev))
    found = lvm.vg_of_device()
    if found != new_vg:
        raise CloneError("vgimportclone named the clone's VG %s, not %s" % (found, new_vg))
    say("volume group %s -> %s (new PV and VG uuids)" % (old_vg, new_vg))
    vdi_map = {}
    lv_names = {}
    for lv in lvm.lvs(new_vg):
        m = _VDI_LV_RE.match(lv)
        if m:
            vdi_map.setdefault(m.group(2), new_uuid())
            lv_names[lv] = (m.group(1), m.group(2))
    for lv, (prefix, old) in sorted(lv_names.items()):
        lvm.run("lvrename", new_vg, lv, "%s-%s" % (prefix, vdi_map[old]))
    say("%d VDI(s) renamed" % len(vdi_map))
    pairs = [(old_sr, new_sr)] + sorted(vdi_map.items())
    for prefix, old in sorted(lv_names.values()):
        if prefix == "LV":
            continue
        with _Volume(lvm, new_vg, "%s-%s" % (prefix, vdi_map[old])) as vol:
            fix = vhdparent.rewrite_vhd if prefix == "VHD" else vhdparent.rewrite_qcow2
            if fix(vol.read, vol.write, pairs):
                say("parent reference of %s-%s renamed" % (prefix, vdi_map[old]))
    if MGT_LV in lvm.lvs(new_vg):
        with _Volume(lvm, new_vg, MGT_LV) as vol:
            length = mgt.used_length(vol.read(0, mgt.SECTOR))
            if length > MGT_MAX:
                raise CloneError("the MGT volume says it uses %d bytes: implausible" % length)
            vol.write(0, mgt.renumber(vol.read(0, length), old_sr, new_sr, vdi_map))
        say("SR metadata (MGT) renumbered")
    else:
        say("note: no MGT volume on the clone (sm recreates it on attach)")
    lvm.run("vgchange", "-an", new_vg)
    return vdi_map
