"""Stand-in of sm's SRCommand: parse the XML-RPC methodCall in argv[1], build
the SR (SR.__init__ -> load), run the command under the SR lock for exclusive
ops, print the methodResponse (or the fault) on stdout, exit 0."""
import os
import sys
import traceback
import xmlrpc.client
from xmlrpc.client import ProtocolError

import XenAPI
import util
import xs_errors

NEEDS_VDI_OBJECT = [
    "vdi_update", "vdi_create", "vdi_delete", "vdi_snapshot", "vdi_clone",
    "vdi_resize", "vdi_resize_online", "vdi_attach", "vdi_detach",
    "vdi_activate", "vdi_deactivate", "vdi_attach_from_config", "vdi_detach_from_config",
    "vdi_generate_config", "vdi_compose", "vdi_epoch_begin", "vdi_epoch_end"]

EXCEPTION_TYPE = {
    "sr_scan": "SRScan",
    "vdi_init": "VDILoad",
    "vdi_create": "VDICreate",
    "vdi_delete": "VDIDelete",
    "vdi_attach": "VDIUnavailable",
    "vdi_detach": "VDIUnavailable",
    "vdi_activate": "VDIUnavailable",
    "vdi_deactivate": "VDIUnavailable",
}


class SRCommand:
    def __init__(self, driver_info):
        self.dconf = ''
        self.type = ''
        self.sr_uuid = ''
        self.cmdname = ''
        self.cmdtype = ''
        self.cmd = None
        self.args = None
        self.driver_info = driver_info

    def parse(self):
        if len(sys.argv) != 2:
            util.SMlog("Failed to parse commandline; wrong number of arguments; argv = %s"
                       % (repr(sys.argv)))
            raise xs_errors.XenError('BadRequest')
        try:
            params, methodname = xmlrpc.client.loads(os.fsencode(sys.argv[1]))
            self.cmd = methodname
            params = params[0]
            self.params = params
            self.dconf = params['device_config']
            if 'sr_uuid' in params:
                self.sr_uuid = params['sr_uuid']
            if 'vdi_uuid' in params:
                self.vdi_uuid = params['vdi_uuid']
            elif self.cmd == "vdi_create":
                self.vdi_uuid = util.gen_uuid()
        except Exception as e:
            util.SMlog("Failed to parse commandline; exception = %s argv = %s"
                       % (str(e), repr(sys.argv)))
            raise xs_errors.XenError('BadRequest')

    def run_statics(self):
        if self.params['command'] == 'sr_get_driver_info':
            print(util.sr_get_driver_info(self.driver_info))
            sys.exit(0)

    def run(self, sr):
        try:
            return self._run_locked(sr)
        except (util.CommandException, util.SMException, XenAPI.Failure) as e:
            util.logException(self.cmd)
            msg = str(e)
            if isinstance(e, util.CommandException):
                msg = "Command %s failed (%s): %s" % (e.cmd, e.reason, os.strerror(abs(e.code)))
            excType = EXCEPTION_TYPE.get(self.cmd) or "SMGeneral"
            raise xs_errors.XenError(excType, opterr=msg)
        except Exception:
            util.logException('generic exception: %s' % self.cmd)
            raise

    def _run_locked(self, sr):
        acquired = False
        target = None
        if self.cmd in sr.ops_exclusive:
            sr.lock.acquire()
            acquired = True
        try:
            if self.cmd in NEEDS_VDI_OBJECT:
                target = sr.vdi(self.vdi_uuid)
            return self._run(sr, target)
        finally:
            if acquired:
                sr.lock.release()
            sr.cleanup()

    def _run(self, sr, target):
        params_to_log = self.params
        if 'device_config' in params_to_log:
            params_to_log = util.hidePasswdInParams(self.params, 'device_config')
        if 'session_ref' in params_to_log:
            params_to_log['session_ref'] = '******'
        util.SMlog("%s %s" % (self.cmd, repr(params_to_log)))

        if self.cmd == 'vdi_create':
            target.label = self.params['args'][1]
            target.description = self.params['args'][2]
            return target.create(self.params['sr_uuid'], self.vdi_uuid,
                                 int(self.params['args'][0]))
        elif self.cmd == 'vdi_delete':
            return target.delete(self.params['sr_uuid'], self.vdi_uuid)
        elif self.cmd == 'vdi_attach':
            return target.attach(self.params['sr_uuid'], self.vdi_uuid)
        elif self.cmd == 'vdi_detach':
            return target.detach(self.params['sr_uuid'], self.vdi_uuid)
        elif self.cmd in ('vdi_activate', 'vdi_deactivate', 'vdi_epoch_begin', 'vdi_epoch_end'):
            return None
        elif self.cmd == 'vdi_generate_config':
            return target.generate_config(self.params['sr_uuid'], self.vdi_uuid)
        elif self.cmd == 'vdi_attach_from_config':
            return target.attach_from_config(self.params['sr_uuid'], self.vdi_uuid)
        elif self.cmd == 'vdi_detach_from_config':
            target.detach(self.params['sr_uuid'], self.vdi_uuid)
            return None
        elif self.cmd == 'sr_create':
            return sr.create(self.params['sr_uuid'], int(self.params['args'][0]))
        elif self.cmd == 'sr_delete':
            return sr.delete(self.params['sr_uuid'])
        elif self.cmd == 'sr_update':
            return sr.update(self.params['sr_uuid'])
        elif self.cmd == 'sr_probe':
            txt = sr.probe()
            util.SMlog("sr_probe result: %s" % util.splitXmlText(txt, showContd=True))
            return xmlrpc.client.dumps((txt, ), "", True)
        elif self.cmd == 'sr_attach':
            is_master = sr.dconf.get("SRmaster") == "true"
            sr_uuid = self.params['sr_uuid']
            if is_master:
                util.set_dirty(sr.session, self.params["sr_ref"])
            try:
                return sr.attach(sr_uuid)
            finally:
                if is_master:
                    sr.after_master_attach(sr_uuid)
        elif self.cmd == 'sr_detach':
            return sr.detach(self.params['sr_uuid'])
        elif self.cmd == 'sr_content_type':
            return sr.content_type(self.params['sr_uuid'])
        elif self.cmd == 'sr_scan':
            return sr.scan(self.params['sr_uuid'])
        else:
            util.SMlog("Unknown command: %s" % self.cmd)
            raise xs_errors.XenError('BadRequest')


def run(driver, driver_info):
    """Run the command in argv[1] on the given driver class (as sm does)."""
    cmd = SRCommand(driver_info)
    try:
        cmd.parse()
        cmd.run_statics()
        sr = driver(cmd, cmd.sr_uuid)
        sr.direct = True
        ret = cmd.run(sr)
        if ret is None:
            print(util.return_nil())
        else:
            print(ret)
    except ProtocolError:
        exception_trace = traceback.format_exc()
        util.SMlog('XenAPI Protocol error %s' % exception_trace)
        print(xs_errors.XenError('APIProtocolError', opterr=exception_trace).toxml())
    except (Exception, xs_errors.SRException) as e:
        try:
            util.logException(driver_info['name'])
        except Exception:
            pass
        if isinstance(e, xs_errors.SRException):
            print(e.toxml())
        else:
            print(xmlrpc.client.dumps(xmlrpc.client.Fault(1200, str(e)), "", True))
    sys.exit(0)
