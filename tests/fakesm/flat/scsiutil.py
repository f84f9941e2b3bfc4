"""Stand-in of sm's scsiutil: SCSI identity helpers. getSCSIid runs scsi_id as
sm does (it fails on devices without SCSI VPD pages such as /dev/rbdN)."""
import os

import util

SECTOR_SHIFT = 9
SCSI_ID_BIN = '/usr/lib/udev/scsi_id'


def getdev(path):
    realpath = os.path.realpath(path)
    return os.path.basename(realpath)


def getsize(path):
    sysfs = os.path.join('/sys/block', getdev(path), 'size')
    try:
        with open(sysfs) as f:
            return int(f.readline()) << SECTOR_SHIFT
    except (IOError, OSError, ValueError):
        return 0


def SCSIid_sanitise(text):
    return text.strip().replace(' ', '_')


def getSCSIid(path):
    if not path.startswith('/dev/'):
        path = '/dev/' + path.lstrip('/')
    if not os.path.exists(SCSI_ID_BIN):
        raise util.CommandException(2, SCSI_ID_BIN, "scsi_id not found")
    return SCSIid_sanitise(util.pread2([SCSI_ID_BIN, '-g', '--device', path]))


def add_serial_record(session, sr_ref, devstring):
    try:
        conf = session.xenapi.SR.get_sm_config(sr_ref)
        conf['devserial'] = devstring
        session.xenapi.SR.set_sm_config(sr_ref, conf)
    except Exception:
        pass


def get_serial_record(session, sr_ref):
    try:
        return session.xenapi.SR.get_sm_config(sr_ref)['devserial']
    except Exception:
        return ""


def devlist_to_serialstring(devlist):
    serial = ''
    for dev in devlist:
        try:
            devserial = "scsi-%s" % getSCSIid(dev)
            if len(serial):
                serial += ','
            serial += devserial
        except Exception:
            pass
    return serial


def refreshdev(pathlist):
    return


def refresh_lun_size_by_SCSIid(SCSIid):
    return True


def refresh_lun_size_by_SCSIid_on_slaves(session, SCSIid):
    return


def rescan(ids, fullrescan=True):
    return
