"""Stand-in of sm's SR module: the SR base class with sm's constructor
(SR.__init__(srcmd, sr_uuid) sets session, dconf, refs, LVM env, then load())."""
import copy
import os
import xml.dom.minidom
import xmlrpc.client

import XenAPI
import util
import xs_errors

MOUNT_BASE = '/var/run/sr-mount'
DEFAULT_TAP = 'vhd'
MASTER_LVM_CONF = '/etc/lvm/master'
LUNPERVDI = "LUNperVDI"

backends = []


def deviceCheck(op):
    def wrapper(self, *args):
        if 'device' not in self.dconf:
            raise xs_errors.XenError('ConfigDeviceMissing')
        return op(self, *args)
    return wrapper


def registerSR(SRClass):
    backends.append(SRClass)


def driver(type):
    for d in backends:
        if d.handles(type):
            return d
    raise xs_errors.XenError('SRUnknownType')


class SR(object):
    @staticmethod
    def handles(type) -> bool:
        return False

    def __init__(self, srcmd, sr_uuid):
        self.other_config = {}
        self.srcmd = srcmd
        self.dconf = srcmd.dconf
        if 'session_ref' in srcmd.params:
            self.session_ref = srcmd.params['session_ref']
            self.session = XenAPI.xapi_local()
            self.session._session = self.session_ref
        else:
            self.session = None
        self.host_ref = self.srcmd.params.get('host_ref', "")
        self.sr_ref = self.srcmd.params.get('sr_ref')
        if 'device_config' in self.srcmd.params:
            if self.dconf.get("SRmaster") == "true":
                os.environ['LVM_SYSTEM_DIR'] = MASTER_LVM_CONF
            if 'SCSIid' in self.srcmd.params['device_config']:
                dev_path = '/dev/disk/by-scsid/' + self.srcmd.params['device_config']['SCSIid']
                os.environ['LVM_DEVICE'] = dev_path
                util.SMlog('Setting LVM_DEVICE to %s' % dev_path)
        self.uuid = sr_uuid
        self.label = ''
        self.description = ''
        self.cmd = srcmd.params['command']
        self.vdis = {}
        self.physical_utilisation = 0
        self.virtual_allocation = 0
        self.physical_size = 0
        self.sr_vditype = ''
        self.passthrough = False
        self.original_srcmd = copy.deepcopy(self.srcmd)
        self.default_vdi_visibility = True
        self.scheds = ['none', 'noop']
        self._mpathinit()
        self.direct = False
        self.ops_exclusive = []
        self.driver_config = {}
        self.load(sr_uuid)

    def create(self, uuid, size) -> None:
        raise xs_errors.XenError('Unimplemented')

    def delete(self, uuid) -> None:
        raise xs_errors.XenError('Unimplemented')

    def update(self, uuid) -> None:
        return

    def attach(self, uuid) -> None:
        raise xs_errors.XenError('Unimplemented')

    def after_master_attach(self, uuid) -> None:
        try:
            self.scan(uuid)
        except Exception as e:
            util.SMlog("Error in SR.after_master_attach %s" % e)
            # as sm does: tell the admin through a XAPI message (sm calls this even
            # when attach failed, in a finally)
            self.session.xenapi.message.create(
                "POST_ATTACH_SCAN_FAILED", 2, "SR", uuid,
                "Failed to scan SR %s after attaching, error %s" % (uuid, e))

    def detach(self, uuid) -> None:
        raise xs_errors.XenError('Unimplemented')

    def probe(self) -> str:
        raise xs_errors.XenError('Unimplemented')

    def scan(self, uuid) -> None:
        self._db_update()

    def content_type(self, uuid) -> str:
        return xmlrpc.client.dumps((str(self.sr_vditype), ), "", True)

    def load(self, sr_uuid) -> None:
        pass

    def check_sr(self, sr_uuid) -> None:
        pass

    def vdi(self, uuid):
        raise xs_errors.XenError('Unimplemented')

    def cleanup(self) -> None:
        pass

    def _db_update(self):
        sr = self.session.xenapi.SR.get_by_uuid(self.uuid)
        self.session.xenapi.SR.set_virtual_allocation(sr, str(self.virtual_allocation))
        self.session.xenapi.SR.set_physical_size(sr, str(self.physical_size))
        self.session.xenapi.SR.set_physical_utilisation(sr, str(self.physical_utilisation))

    def _toxml(self):
        dom = xml.dom.minidom.Document()
        element = dom.createElement("sr")
        dom.appendChild(element)
        for attr in ('uuid', 'physical_utilisation', 'virtual_allocation', 'physical_size'):
            entry = dom.createElement(attr)
            element.appendChild(entry)
            entry.appendChild(dom.createTextNode(str(getattr(self, attr))))
        return dom

    def _mpathinit(self):
        self.mpath = "false"
        self.mpathhandle = "null"
        self.mpathmodule = __import__("mpath_null")

    def _mpathHandle(self):
        if self.mpath == "true":
            self.mpathmodule.activate()
        else:
            self.mpathmodule.deactivate()

    def _pathrefresh(self, obj):
        SCSIid = self.SCSIid
        self.dconf['device'] = self.mpathmodule.path(SCSIid)
        super(obj, self).load(self.uuid)

    def _setMultipathableFlag(self, SCSIid=''):
        try:
            sm_config = self.session.xenapi.SR.get_sm_config(self.sr_ref)
            sm_config['multipathable'] = 'true'
            self.session.xenapi.SR.set_sm_config(self.sr_ref, sm_config)
        except Exception:
            pass

    def check_dconf(self, key_list, raise_flag=True):
        missing_keys = {key for key in key_list if key not in self.dconf}
        if missing_keys and raise_flag:
            errstr = 'device-config is missing the following parameters: ' + \
                     ', '.join(sorted(missing_keys))
            raise xs_errors.XenError('ConfigParamsMissing', opterr=errstr)
        return missing_keys
