"""Stand-in of sm's lvutil: real LVM commands (bounded by util's timeout)."""
import os
import xml.dom.minidom

import scsiutil
import util
import xs_errors

LVM_BIN = os.path.isfile('/sbin/lvdisplay') and '/sbin' or '/usr/sbin'
LVM_SIZE_INCREMENT = 4 * 1024 * 1024
MDVOLUME_NAME = 'MGT'


def cmd_lvm(cmd, pread_func=util.pread2, *args):
    return pread_func([os.path.join(LVM_BIN, cmd[0])] + cmd[1:], *args)


def _checkVG(vgname):
    try:
        cmd_lvm(["vgs", "--readonly", vgname])
        return True
    except Exception:
        return False


def _checkPV(pvname):
    try:
        cmd_lvm(["pvs", pvname])
        return True
    except Exception:
        return False


def _checkLV(path):
    try:
        cmd_lvm(["lvdisplay", path])
        return True
    except Exception:
        return False


def _getVGstats(vgname):
    try:
        text = cmd_lvm(["vgs", "--noheadings", "--nosuffix", "--units", "b", vgname],
                       pread_func=util.pread).split()
        size = int(text[5])
        freespace = int(text[6])
        return {'physical_size': size, 'physical_utilisation': size - freespace,
                'freespace': freespace}
    except util.CommandException as inst:
        raise xs_errors.XenError('VDILoad', opterr='rvgstats failed error is %d' % inst.code)
    except ValueError:
        raise xs_errors.XenError('VDILoad', opterr='rvgstats failed')


def get_pv_for_vg(vgname):
    text = cmd_lvm(["pvs", "--noheadings", "-o", "pv_name,vg_name"])
    pvs = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == vgname:
            pvs.append(parts[0])
    return pvs


def _get_sr_uuid(pvname, prefix_list):
    text = cmd_lvm(["pvs", "--noheadings", "-o", "vg_name", pvname])
    vg = text.strip()
    for prefix in prefix_list:
        if vg.startswith(prefix):
            return vg[len(prefix):]
    return ""


def scan_srlist(prefix, root):
    VGs = {}
    for dev in root.split(','):
        try:
            sr_uuid = _get_sr_uuid(dev, [prefix]).strip(' \n')
            if len(sr_uuid):
                VGs[sr_uuid] = VGs[sr_uuid] + ",%s" % dev if sr_uuid in VGs else dev
        except Exception as e:
            util.logException("exception (ignored): %s" % e)
    return VGs


def srlist_toxml(VGs, prefix, includeMetadata=False):
    dom = xml.dom.minidom.Document()
    element = dom.createElement("SRlist")
    dom.appendChild(element)
    for val in VGs:
        entry = dom.createElement('SR')
        element.appendChild(entry)
        for name, text in (("UUID", val), ("Devlist", VGs[val]),
                           ("size", str(_getVGstats(prefix + val)['physical_size']))):
            sub = dom.createElement(name)
            entry.appendChild(sub)
            sub.appendChild(dom.createTextNode(text))
    return dom.toprettyxml()


def createVG(root, vgname):
    rootdev = root.split(',')[0]
    for dev in root.split(','):
        if not os.path.exists(dev):
            raise xs_errors.XenError('InvalidDev', opterr=('Device %s does not exist') % dev)
        try:
            cmd_lvm(["pvcreate", "-ff", "-y", "--metadatasize", "10M", dev])
        except util.CommandException as inst:
            raise xs_errors.XenError('LVMPartCreate', opterr='error is %d' % inst.code)
    try:
        cmd_lvm(["vgcreate", "--metadatasize", "10M", vgname, rootdev])
    except Exception:
        raise xs_errors.XenError('LVMGroupCreate')
    try:
        cmd_lvm(["vgchange", "-an", vgname])
    except util.CommandException as inst:
        raise xs_errors.XenError('LVMUnMount', opterr='errno is %d' % inst.code)


def removeVG(root, vgname):
    try:
        for dev in root.split(','):
            txt = cmd_lvm(["pvs", dev])
            if txt.find(vgname) == -1:
                raise xs_errors.XenError('LVMNoVolume', opterr='volume is %s' % vgname)
    except util.CommandException as inst:
        raise xs_errors.XenError('PVSfailed', opterr='error is %d' % inst.code)
    try:
        devs = get_pv_for_vg(vgname)
        cmd_lvm(["vgremove", "-f", vgname])
        for dev in devs:
            cmd_lvm(["pvremove", dev])
    except util.CommandException as inst:
        raise xs_errors.XenError('LVMDelete', opterr='errno is %d' % inst.code)


def resizePV(dev):
    try:
        cmd_lvm(["pvresize", dev])
    except util.CommandException:
        util.SMlog("Failed to grow the PV, non-fatal")


def setActiveVG(path, active):
    cmd_lvm(["vgchange", "-a" + ("y" if active else "n"), path])


def checkPVScsiIds(vgname, SCSIid):
    text = cmd_lvm(["pvs", "-a", "--select", "vgname=%s" % vgname, "--noheadings"])
    pv_paths = [x.split()[0] for x in text.splitlines() if x.strip()]
    for pv_path in pv_paths:
        pv_scsi_id = scsiutil.getSCSIid(pv_path)
        if pv_scsi_id != SCSIid:
            raise xs_errors.XenError(
                'PVMultiIDs', opterr='Found PVs %s and unexpected SCSI ID %s, expected %s'
                % (",".join(pv_paths), pv_scsi_id, SCSIid))
