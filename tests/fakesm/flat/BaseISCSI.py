"""Stand-in of sm's BaseISCSI.BaseISCSISR, enough for the stock (non-RBD) iSCSI
path to behave like sm's when no iSCSI target answers: required-key checks,
port check, target reachability (ISCSITarget)."""
import os

import SR
import util
import xs_errors

DEFAULT_PORT = 3260
MAXPORT = 65535
MAX_TIMEOUT = 15


class BaseISCSISR(SR.SR):
    @staticmethod
    def handles(type) -> bool:
        return False

    def load(self, sr_uuid) -> None:
        self.sr_vditype = 'phy'
        self.default_vdi_visibility = False
        if 'target' not in self.dconf or not self.dconf['target']:
            raise xs_errors.XenError('ConfigTargetMissing')
        try:
            self.localIQN = self.dconf.get('localIQN') or \
                self.session.xenapi.host.get_other_config(self.host_ref)['iscsi_iqn']
        except Exception:
            raise xs_errors.XenError('ConfigISCSIIQNMissing')
        try:
            self.target = util._convertDNS(self.dconf['target'].split(',')[0])
        except Exception:
            raise xs_errors.XenError('DNSError')
        self.targetlist = self.dconf.get('targetlist', self.target)
        self.chapuser = ""
        self.chappassword = ""
        self.incoming_chapuser = ""
        self.incoming_chappassword = ""
        self.port = DEFAULT_PORT
        if 'port' in self.dconf and self.dconf['port']:
            try:
                self.port = int(self.dconf['port'])
            except Exception:
                raise xs_errors.XenError('ISCSIPort')
        if self.port > MAXPORT or self.port < 1:
            raise xs_errors.XenError('ISCSIPort')
        if 'targetIQN' not in self.dconf or not self.dconf['targetIQN']:
            self._scan_IQNs()
            raise xs_errors.XenError('ConfigTargetIQNMissing')
        self.targetIQN = self.dconf['targetIQN']
        self.attached = False
        self.path = os.path.join("/dev/iscsi", self.targetIQN, "%s:%d" % (self.target, self.port))
        self.adapter = {}
        self.address = "%s:%d" % (self.target, self.port)
        self.LUNs = {}

    def _scan_IQNs(self):
        util._testHost(self.target, self.port, 'ISCSITarget')
        raise xs_errors.XenError('ISCSIDiscovery', opterr='stand-in has no iSCSI initiator')

    def attach(self, sr_uuid) -> None:
        util._testHost(self.target, self.port, 'ISCSITarget')
        raise xs_errors.XenError('ISCSILogin', opterr='stand-in has no iSCSI initiator')

    def detach(self, sr_uuid) -> None:
        self.attached = False

    def refresh(self):
        return

    def print_LUNs(self):
        self.LUNs = {}

    def _attach_LUN_bySCSIid(self, SCSIid):
        raise xs_errors.XenError('ISCSIDevice')
