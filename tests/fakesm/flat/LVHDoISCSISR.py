#!/usr/bin/python3
"""Stand-in of sm's LVHDoISCSISR (XCP-ng 8.3 flat layout): LVHD over an iSCSI
LUN. Same class and method names, the same `load` line the RBDSR hook is
anchored on, and the same `__main__` tail (LVMoISCSISR is a symlink to it)."""
import sys
import xml.dom.minidom
import xmlrpc.client

import BaseISCSI
import LVHDSR
import SR
import SRCommand
import lvutil
import util
import xs_errors

CAPABILITIES = ["SR_PROBE", "SR_UPDATE", "SR_METADATA", "SR_TRIM",
                "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH",
                "VDI_GENERATE_CONFIG", "VDI_CLONE", "VDI_SNAPSHOT",
                "VDI_RESIZE", "ATOMIC_PAUSE", "VDI_RESET_ON_BOOT/2",
                "VDI_UPDATE", "VDI_MIRROR", "VDI_CONFIG_CBT",
                "VDI_ACTIVATE", "VDI_DEACTIVATE"]

CONFIGURATION = [['SCSIid', 'The scsi_id of the destination LUN'],
                 ['target', 'IP address or hostname of the iSCSI target'],
                 ['targetIQN', 'The IQN of the target LUN group to be attached'],
                 ['chapuser', 'The username to be used during CHAP authentication'],
                 ['chappassword', 'The password to be used during CHAP authentication'],
                 ['port', 'The network port number on which to query the target']]

DRIVER_INFO = {
    'name': 'LVHD over iSCSI',
    'description': 'stand-in LVHD over iSCSI SR',
    'vendor': 'RBDSR tests',
    'copyright': '',
    'driver_version': '1.0',
    'required_api_version': '1.0',
    'capabilities': CAPABILITIES,
    'configuration': CONFIGURATION
}


class LVHDoISCSISR(LVHDSR.LVHDSR):
    """LVHD over ISCSI storage repository"""

    @staticmethod
    def handles(type) -> bool:
        if __name__ == '__main__':
            name = sys.argv[0]
        else:
            name = __name__
        if name.endswith("LVMoISCSISR"):
            return type == "lvmoiscsi"
        return type == "lvhdoiscsi"

    def load(self, sr_uuid) -> None:
        if not sr_uuid:
            sr_uuid = util.gen_uuid()
        if util.isVDICommand(self.original_srcmd.cmd):
            self.SCSIid = self.dconf['SCSIid']
        else:
            self.create_iscsi_sessions(sr_uuid)
        LVHDSR.LVHDSR.load(self, sr_uuid)

    def create_iscsi_sessions(self, sr_uuid):
        if 'target' in self.original_srcmd.dconf:
            self.original_srcmd.dconf['targetlist'] = self.original_srcmd.dconf['target']
        iscsi = BaseISCSI.BaseISCSISR(self.original_srcmd, sr_uuid)
        self.iscsiSRs = [iscsi]
        self.iscsi = self.iscsiSRs[0]
        if 'SCSIid' not in self.dconf:
            self.LUNs = {}
            for ii in range(0, len(self.iscsiSRs)):
                self.iscsi = self.iscsiSRs[ii]
                self._LUNprint(sr_uuid)
                for key in self.iscsi.LUNs:
                    self.LUNs[key] = self.iscsi.LUNs[key]
            self.print_LUNs_XML()
            self.iscsi = self.iscsiSRs[0]
            raise xs_errors.XenError('ConfigSCSIid')
        self.SCSIid = self.dconf['SCSIid']

    def print_LUNs_XML(self):
        dom = xml.dom.minidom.Document()
        element = dom.createElement("iscsi-target")
        dom.appendChild(element)
        for uuid in self.LUNs:
            val = self.LUNs[uuid]
            entry = dom.createElement('LUN')
            element.appendChild(entry)
            for attr in ('vendor', 'serial', 'LUNid', 'size', 'SCSIid'):
                aval = getattr(val, attr, None)
                if aval:
                    sub = dom.createElement(attr)
                    entry.appendChild(sub)
                    sub.appendChild(dom.createTextNode(str(aval)))
        print(dom.toprettyxml(), file=sys.stderr)

    def _LUNprint(self, sr_uuid):
        self.iscsi.attach(sr_uuid)
        self.iscsi.print_LUNs()
        self.iscsi.detach(sr_uuid)

    def create(self, sr_uuid, size) -> None:
        if util.test_SCSIid(self.session, sr_uuid, self.SCSIid):
            raise xs_errors.XenError('SRInUse')
        self.iscsi.attach(sr_uuid)
        try:
            self.iscsi._attach_LUN_bySCSIid(self.SCSIid)
            self._pathrefresh(LVHDoISCSISR)
            LVHDSR.LVHDSR.create(self, sr_uuid, size)
        except Exception as inst:
            self.iscsi.detach(sr_uuid)
            raise xs_errors.XenError("SRUnavailable", opterr=inst)
        self.iscsi.detach(sr_uuid)

    def delete(self, sr_uuid) -> None:
        self._pathrefresh(LVHDoISCSISR)
        LVHDSR.LVHDSR.delete(self, sr_uuid)
        for i in self.iscsiSRs:
            i.detach(sr_uuid)

    def attach(self, sr_uuid) -> None:
        try:
            for i in self.iscsiSRs:
                i.attach(sr_uuid)
                i._attach_LUN_bySCSIid(self.SCSIid)
            self._pathrefresh(LVHDoISCSISR)
            LVHDSR.LVHDSR.attach(self, sr_uuid)
            lvutil.checkPVScsiIds(self.vgname, self.SCSIid)
        except Exception as inst:
            for i in self.iscsiSRs:
                i.detach(sr_uuid)
            if isinstance(inst, xs_errors.SROSError):
                raise
            raise xs_errors.XenError("SRUnavailable", opterr=inst)
        self._setMultipathableFlag(SCSIid=self.SCSIid)

    def detach(self, sr_uuid) -> None:
        LVHDSR.LVHDSR.detach(self, sr_uuid)
        for i in self.iscsiSRs:
            i.detach(sr_uuid)

    def scan(self, sr_uuid) -> None:
        self._pathrefresh(LVHDoISCSISR)
        LVHDSR.LVHDSR.scan(self, sr_uuid)

    def probe(self) -> str:
        self.uuid = util.gen_uuid()
        self.iscsi.attach(self.uuid)
        self.iscsi._attach_LUN_bySCSIid(self.SCSIid)
        self._pathrefresh(LVHDoISCSISR)
        out = LVHDSR.LVHDSR.probe(self)
        self.iscsi.detach(self.uuid)
        return out

    def check_sr(self, sr_uuid) -> None:
        pass

    def vdi(self, uuid):
        return LVHDoISCSIVDI(self, uuid)


class LVHDoISCSIVDI(LVHDSR.LVHDVDI):
    def generate_config(self, sr_uuid, vdi_uuid) -> str:
        util.SMlog("LVHDoISCSIVDI.generate_config")
        if not lvutil._checkLV(self.path):
            raise xs_errors.XenError('VDIUnavailable')
        dict = {}
        self.sr.dconf['localIQN'] = self.sr.iscsi.localIQN
        self.sr.dconf['multipathing'] = self.sr.mpath
        self.sr.dconf['multipathhandle'] = self.sr.mpathhandle
        dict['device_config'] = self.sr.dconf
        if 'chappassword_secret' in dict['device_config']:
            s = util.get_secret(self.session, dict['device_config']['chappassword_secret'])
            del dict['device_config']['chappassword_secret']
            dict['device_config']['chappassword'] = s
        dict['sr_uuid'] = sr_uuid
        dict['vdi_uuid'] = vdi_uuid
        dict['command'] = 'vdi_attach_from_config'
        config = xmlrpc.client.dumps(tuple([dict]), "vdi_attach_from_config")
        return xmlrpc.client.dumps((config, ), "", True)

    def attach_from_config(self, sr_uuid, vdi_uuid) -> str:
        util.SMlog("LVHDoISCSIVDI.attach_from_config")
        try:
            self.sr.iscsi.attach(sr_uuid)
            self.sr.iscsi._attach_LUN_bySCSIid(self.sr.SCSIid)
            return LVHDSR.LVHDVDI.attach(self, sr_uuid, vdi_uuid)
        except Exception:
            util.logException("LVHDoISCSIVDI.attach_from_config")
            raise xs_errors.XenError('SRUnavailable',
                                     opterr='Unable to attach the heartbeat disk')


if __name__ == '__main__':
    SRCommand.run(LVHDoISCSISR, DRIVER_INFO)
else:
    SR.registerSR(LVHDoISCSISR)
