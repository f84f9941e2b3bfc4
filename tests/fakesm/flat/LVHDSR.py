"""Stand-in of sm's LVHDSR: an SR is the VG VG_XenStorage-<uuid> on the
devices in dconf['device']; VDIs are LVs. It runs real LVM commands (used for
real in the VM tier) and keeps sm's method names, signatures and error keys."""
import fcntl
import os
import tempfile
import xmlrpc.client

import SR
import SRCommand
import VDI
import lvhdutil
import lvutil
import scsiutil
import util
import xs_errors
from SR import deviceCheck

CAPABILITIES = ["SR_PROBE", "SR_UPDATE", "SR_TRIM", "VDI_CREATE", "VDI_DELETE",
                "VDI_ATTACH", "VDI_DETACH", "VDI_MIRROR", "VDI_CLONE", "VDI_SNAPSHOT",
                "VDI_RESIZE", "ATOMIC_PAUSE", "VDI_RESET_ON_BOOT/2", "VDI_UPDATE",
                "VDI_CONFIG_CBT", "VDI_ACTIVATE", "VDI_DEACTIVATE"]

CONFIGURATION = [['device', 'local device path (required) (e.g. /dev/sda3)']]

DRIVER_INFO = {
    'name': 'Local VHD on LVM',
    'description': 'stand-in LVHD SR',
    'vendor': 'RBDSR tests',
    'copyright': '',
    'driver_version': '1.0',
    'required_api_version': '1.0',
    'capabilities': CAPABILITIES,
    'configuration': CONFIGURATION
}

OPS_EXCLUSIVE = ["sr_create", "sr_delete", "sr_attach", "sr_detach", "sr_scan",
                 "sr_update", "vdi_create", "vdi_delete", "vdi_resize", "vdi_snapshot",
                 "vdi_clone"]


class Lock(object):
    """The SR lock: an flock in FAKESM_LOCKDIR (default: the temp dir)."""

    def __init__(self, uuid):
        d = os.environ.get("FAKESM_LOCKDIR") or tempfile.gettempdir()
        self.path = os.path.join(d, "fakesm-sr-%s.lock" % uuid)
        self.fd = None

    def acquire(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class LVHDSR(SR.SR):
    DRIVER_TYPE = 'lvhd'
    MDVOLUME_NAME = "MGT"
    FLAG_USE_VHD = "use_vhd"
    legacyMode = True

    @staticmethod
    def handles(type) -> bool:
        return type == LVHDSR.DRIVER_TYPE

    def load(self, sr_uuid) -> None:
        self.ops_exclusive = OPS_EXCLUSIVE
        self.isMaster = self.dconf.get('SRmaster') == 'true'
        self.lock = Lock(self.uuid)
        self.sr_vditype = SR.DEFAULT_TAP
        self.uuid = sr_uuid
        self.vgname = lvhdutil.VG_PREFIX + self.uuid
        self.path = os.path.join(lvhdutil.VG_LOCATION, self.vgname)
        self.mdpath = os.path.join(self.path, self.MDVOLUME_NAME)
        if not self.srcmd.params.get("sr_ref"):
            return  # must be a probe call
        self.other_conf = self.session.xenapi.SR.get_other_config(self.sr_ref)
        self.sm_config = self.session.xenapi.SR.get_sm_config(self.sr_ref)
        if self.sm_config.get(self.FLAG_USE_VHD) == "true":
            self.legacyMode = False

    def _refresh_size(self):
        if hasattr(self, 'SCSIid'):
            return scsiutil.refresh_lun_size_by_SCSIid(self.SCSIid)
        scsiutil.refreshdev(self.dconf['device'].split(','))
        return True

    def _expand_size(self):
        currentvgsize = lvutil._getVGstats(self.vgname)['physical_size']
        resizethreshold = 100 * 1024 * 1024
        total = sum(scsiutil.getsize(d) for d in self.dconf['device'].split(','))
        if total >= currentvgsize + resizethreshold:
            util.SMlog("LVHDSR._expand_size for %s will resize the pv." % self.uuid)
            for pv in lvutil.get_pv_for_vg(self.vgname):
                lvutil.resizePV(pv)

    @deviceCheck
    def create(self, uuid, size) -> None:
        util.SMlog("LVHDSR.create for %s" % self.uuid)
        if not self.isMaster:
            raise xs_errors.XenError('LVMMaster')
        if lvutil._checkVG(self.vgname):
            raise xs_errors.XenError('SRExists')
        lvutil.createVG(self.dconf['device'], self.vgname)
        scsiutil.add_serial_record(self.session, self.sr_ref,
                                   scsiutil.devlist_to_serialstring(self.dconf['device'].split(',')))
        self.session.xenapi.SR.add_to_sm_config(self.sr_ref, self.FLAG_USE_VHD, 'true')

    def delete(self, uuid) -> None:
        util.SMlog("LVHDSR.delete for %s" % self.uuid)
        if not self.isMaster:
            raise xs_errors.XenError('LVMMaster')
        if lvutil._checkVG(self.vgname):
            lvs = self._lv_names()
            if [lv for lv in lvs if lv != self.MDVOLUME_NAME]:
                raise xs_errors.XenError('SRNotEmpty')
            lvutil.setActiveVG(self.vgname, False)
            lvutil.removeVG(self.dconf['device'], self.vgname)

    def attach(self, uuid) -> None:
        util.SMlog("LVHDSR.attach for %s" % self.uuid)
        if not util.match_uuid(self.uuid) or not lvutil._checkVG(self.vgname):
            raise xs_errors.XenError('SRUnavailable',
                                     opterr='no such volume group: %s' % self.vgname)
        if self.isMaster and not self._lv_exists(self.MDVOLUME_NAME):
            lvutil.cmd_lvm(["lvcreate", "-n", self.MDVOLUME_NAME, "-L", "4", "-W", "y",
                            "--yes", self.vgname])
        refreshsizeok = self._refresh_size()
        if self.isMaster:
            if refreshsizeok:
                self._expand_size()
            scsiutil.add_serial_record(
                self.session, self.sr_ref,
                scsiutil.devlist_to_serialstring(self.dconf['device'].split(',')))

    def detach(self, uuid) -> None:
        util.SMlog("LVHDSR.detach for %s" % self.uuid)
        if lvutil._checkVG(self.vgname):
            try:
                lvutil.setActiveVG(self.vgname, False)
            except util.CommandException:
                raise Exception("SR detach failed, please refer to the log for details.")

    def scan(self, uuid) -> None:
        util.SMlog("LVHDSR.scan for %s" % self.uuid)
        if not self.isMaster:
            raise xs_errors.XenError('LVMMaster')
        if self._refresh_size():
            self._expand_size()
        stats = lvutil._getVGstats(self.vgname)
        self.physical_size = stats['physical_size']
        self.physical_utilisation = stats['physical_utilisation']
        SR.SR.scan(self, uuid)

    def update(self, uuid) -> None:
        if not lvutil._checkVG(self.vgname):
            return
        stats = lvutil._getVGstats(self.vgname)
        self.physical_size = stats['physical_size']
        self.physical_utilisation = stats['physical_utilisation']
        self.virtual_allocation = int(
            self.session.xenapi.SR.get_virtual_allocation(self.sr_ref))
        self._db_update()

    @deviceCheck
    def probe(self) -> str:
        sm_config = self.srcmd.params.get('sr_sm_config', {})
        return lvutil.srlist_toxml(lvutil.scan_srlist(lvhdutil.VG_PREFIX, self.dconf['device']),
                                   lvhdutil.VG_PREFIX, sm_config.get('metadata') == 'true')

    def vdi(self, uuid):
        return LVHDVDI(self, uuid)

    def _lv_names(self):
        text = lvutil.cmd_lvm(["lvs", "--noheadings", "-o", "lv_name", self.vgname])
        return [x.strip() for x in text.splitlines() if x.strip()]

    def _lv_exists(self, name):
        return name in self._lv_names()


class LVHDVDI(VDI.VDI):
    """A raw LV per VDI (enough for the tests: create, attach, detach, delete)."""

    def load(self, vdi_uuid) -> None:
        self.lvname = lvhdutil.LV_PREFIX["aio"] + vdi_uuid
        self.path = os.path.join(self.sr.path, self.lvname)

    def create(self, sr_uuid, vdi_uuid, size) -> str:
        if not self.sr.isMaster:
            raise xs_errors.XenError('LVMMaster')
        mib = max(4, (int(size) + (1 << 20) - 1) >> 20)
        lvutil.cmd_lvm(["lvcreate", "-n", self.lvname, "-L", str(mib), "-W", "y", "--yes",
                        self.sr.vgname])
        lvutil.cmd_lvm(["lvchange", "-an", os.path.join(self.sr.path, self.lvname)])
        self.size = int(size)
        self.sr.session.xenapi.VDI.db_introduce(
            vdi_uuid, self.label, self.description, self.sr.sr_ref, "user", False, False,
            {}, vdi_uuid, {}, {})
        return self.get_params()

    def attach(self, sr_uuid, vdi_uuid) -> str:
        lvutil.cmd_lvm(["lvchange", "-ay", self.path])
        return xmlrpc.client.dumps(({'params': self.path, 'xenstore_data': {}}, ), "", True)

    def detach(self, sr_uuid, vdi_uuid) -> None:
        lvutil.cmd_lvm(["lvchange", "-an", self.path])

    def delete(self, sr_uuid, vdi_uuid, data_only=False) -> None:
        lvutil.cmd_lvm(["lvremove", "-f", self.path])
        try:
            ref = self.sr.session.xenapi.VDI.get_by_uuid(vdi_uuid)
            self.sr.session.xenapi.VDI.db_forget(ref)
        except Exception:
            pass


if __name__ == '__main__':
    SRCommand.run(LVHDSR, DRIVER_INFO)
else:
    SR.registerSR(LVHDSR)
