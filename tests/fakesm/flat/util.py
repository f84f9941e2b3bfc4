"""Stand-in of sm's util module: the functions the RBDSR driver and the stand-in
SR classes use, with sm's names and signatures. SMlog writes to the file named
by env SMLOG (default: a file in the temp dir) instead of syslog."""
import errno
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid as _uuid
import xmlrpc.client

import XenAPI  # noqa: F401  (sm's util imports it; keep the dependency shape)
import xs_errors

LOG_INFO = 6
LOG_WARNING = 4
LOG_ERR = 3
LOG_DEBUG = 7

PASSWD_PROP_KEYS = ['password', 'cifspassword', 'chappassword', 'incoming_chappassword']
DEFAULT_SEGMENT_LEN = 950
# Every command the stand-in runs is bounded.
CMD_TIMEOUT = 120


class SMException(Exception):
    """Base class for all SM exceptions"""


class CommandException(SMException):
    def error_message(self, code):
        if code > 0:
            return os.strerror(code)
        elif code < 0:
            return "Signalled %s" % (abs(code))
        return "Success"

    def __init__(self, code, cmd="", reason='exec failed'):
        self.code = code
        self.cmd = cmd
        self.reason = reason
        Exception.__init__(self, self.error_message(code))


def smlog_path():
    return os.environ.get("SMLOG") or os.path.join(tempfile.gettempdir(), "fakesm-SMlog")


def SMlog(message, ident="SM", priority=LOG_INFO):
    with open(smlog_path(), "a") as f:
        for line in str(message).split('\n'):
            f.write("%s %s: [%d] %s\n" % (time.strftime("%b %d %H:%M:%S"), ident,
                                           os.getpid(), line))


def logException(tag):
    info = sys.exc_info()
    if info[0] is SystemExit:
        sys.exit(0)
    tb = "".join(traceback.format_tb(info[2]))
    SMlog("***** %s: EXCEPTION %s, %s\n%s" % (tag, info[0], info[1], tb))


def is_string(value):
    return isinstance(value, str)


def doexec(args, inputtext=None, new_env=None, text=True):
    env = None
    if new_env:
        env = dict(os.environ)
        env.update(new_env)
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, close_fds=True, env=env,
                            universal_newlines=text)
    try:
        stdout, stderr = proc.communicate(inputtext, timeout=CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        return (-9, stdout, stderr)
    return (proc.returncode, stdout, stderr)


def pread(cmdlist, close_stdin=False, scramble=None, expect_rc=0, quiet=False,
          new_env=None, text=True):
    if not quiet:
        SMlog(cmdlist)
    (rc, stdout, stderr) = doexec(cmdlist, new_env=new_env, text=text)
    if rc != expect_rc:
        SMlog("FAILED in util.pread: (rc %d) stdout: '%s', stderr: '%s'" % (rc, stdout, stderr))
        if '' == stderr:
            stderr = stdout
        raise CommandException(rc, str(cmdlist), stderr.strip())
    if not quiet:
        SMlog("  pread SUCCESS")
    return stdout


def pread2(cmdlist, quiet=False, text=True):
    return pread(cmdlist, quiet=quiet, text=text)


def gen_uuid():
    return str(_uuid.uuid4())


def match_uuid(s):
    regex = re.compile("^[0-9a-f]{8}-(([0-9a-f]{4})-){3}[0-9a-f]{12}")
    return regex.search(s, 0)


def roundup(divisor, value):
    if value == 0:
        value = 1
    if value % divisor != 0:
        return ((int(value) // divisor) + 1) * divisor
    return value


def isVDICommand(cmd):
    return cmd is None or cmd in ["vdi_attach", "vdi_detach", "vdi_activate",
                                  "vdi_deactivate", "vdi_epoch_begin", "vdi_epoch_end"]


def get_secret(session, uuid):
    try:
        ref = session.xenapi.secret.get_by_uuid(uuid)
        return session.xenapi.secret.get_value(ref)
    except Exception:
        raise xs_errors.XenError('InvalidSecret', opterr='Unable to look up secret [%s]' % uuid)


def find_my_pbd_record(session, host_ref, sr_ref):
    try:
        pbds = session.xenapi.PBD.get_all_records()
        for pbd_ref in pbds.keys():
            if pbds[pbd_ref]['host'] == host_ref and pbds[pbd_ref]['SR'] == sr_ref:
                return [pbd_ref, pbds[pbd_ref]]
        return None
    except Exception as e:
        SMlog("Caught exception while looking up PBD for host %s SR %s: %s"
              % (str(host_ref), str(sr_ref), str(e)))
        return None


def find_my_pbd(session, host_ref, sr_ref):
    ret = find_my_pbd_record(session, host_ref, sr_ref)
    return ret[0] if ret is not None else None


def test_SCSIid(session, sr_uuid, SCSIid):
    if sr_uuid is not None:
        sr = session.xenapi.SR.get_by_uuid(sr_uuid)
    try:
        pbds = session.xenapi.PBD.get_all_records()
    except Exception:
        raise xs_errors.XenError('APIPBDQuery')
    for pbd in pbds:
        record = pbds[pbd]
        if sr_uuid is not None and record["SR"] == sr:
            break
        devconfig = record["device_config"]
        sm_config = session.xenapi.SR.get_sm_config(record["SR"])
        if 'SCSIid' in devconfig and devconfig['SCSIid'] == SCSIid:
            return True
        elif 'SCSIid' in sm_config and sm_config['SCSIid'] == SCSIid:
            return True
        elif 'scsi-' + SCSIid in sm_config:
            return True
    return False


def test_hostPBD_devs(session, sr_uuid, devs):
    return False


def test_scsiserial(session, device):
    return False


def set_dirty(session, sr):
    try:
        session.xenapi.SR.add_to_other_config(sr, "dirty", "")
        SMlog("set_dirty %s succeeded" % (repr(sr)))
    except Exception:
        SMlog("set_dirty %s failed (flag already set?)" % (repr(sr)))


def _convertDNS(name):
    return socket.getaddrinfo(name, None)[0][4][0]


def _testHost(hostname, port, errstring):
    SMlog("_testHost: Testing host/port: %s,%d" % (hostname, port))
    try:
        sockinfo = socket.getaddrinfo(hostname, int(port))[0]
    except Exception:
        logException('Exception occured getting IP for %s' % hostname)
        raise xs_errors.XenError('DNSError')
    sock = socket.socket(sockinfo[0], socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.connect(sockinfo[4])
        sock.close()
    except socket.error as reason:
        SMlog("_testHost: Connect failed after %d seconds (%s) - %s" % (5, hostname, reason))
        raise xs_errors.XenError(errstring)


def pathexists(path):
    try:
        os.lstat(path)
        return True
    except OSError:
        return False


def wait_for_path(path, timeout):
    for _ in range(0, timeout):
        if len(glob.glob(path)):
            return True
        time.sleep(1)
    return False


def wait_for_nopath(path, timeout):
    for _ in range(0, timeout):
        if not os.path.exists(path):
            return True
        time.sleep(1)
    return False


def listdir(path, quiet=False):
    try:
        return sorted(os.listdir(path))
    except OSError as inst:
        raise CommandException(inst.errno or errno.EIO, "ls %s" % path, "failed")


def force_unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def sr_get_driver_info(driver_info):
    results = {}
    for key in ['name', 'description', 'vendor', 'copyright', 'driver_version',
                'required_api_version']:
        results[key] = driver_info[key]
    caps = driver_info['capabilities']
    if "ATOMIC_PAUSE" in caps:
        for cap in ("VDI_ACTIVATE", "VDI_DEACTIVATE"):
            if cap not in caps:
                caps.append(cap)
    results['capabilities'] = caps
    results['configuration'] = [{'key': o[0], 'description': o[1]}
                                for o in driver_info['configuration']]
    return xmlrpc.client.dumps((results, ), "", True)


def return_nil():
    return xmlrpc.client.dumps((None, ), "", True, allow_none=True)


def hideValuesInPropMap(propmap, propnames):
    matches = [p for p in propnames if p in propmap]
    if matches:
        deepCopyRec = dict(propmap)
        for match in matches:
            deepCopyRec[match] = '******'
        return deepCopyRec
    return propmap


def hidePasswdInConfig(config):
    return hideValuesInPropMap(config, PASSWD_PROP_KEYS)


def hidePasswdInParams(params, configProp):
    params[configProp] = hideValuesInPropMap(params[configProp], PASSWD_PROP_KEYS)
    return params


def splitXmlText(xmlData, segmentLen=DEFAULT_SEGMENT_LEN, showContd=False):
    return str(xmlData).replace('\n', '').replace('\t', '')


def isLegalXMLString(s):
    return not re.search(u'[\x00-\x08\x0b\x0c\x0e-\x1f]', s)


def to_plain_string(obj):
    if obj is None:
        return None
    return obj if isinstance(obj, str) else str(obj)


def default(self, field, thunk):
    try:
        return getattr(self, field)
    except AttributeError:
        return thunk()


def list_VDI_records_in_sr(sr):
    recs = sr.session.xenapi.VDI.get_all_records()
    return dict((k, v) for k, v in recs.items() if v.get("SR") == sr.sr_ref)


def get_this_host():
    return None


def get_localhost_ref(session):
    return session.xenapi.session.get_this_host(None)
