"""The RBDSR driver class: LVHD over one Ceph RBD image, as a fork of sm's
iSCSI code path.

An lvmoiscsi SR that rbdsr.diversion claims is diverted here by the hook in
sm's iSCSI driver load() (rbdsr.smglue.divert). The fields keep their wizard
names: target = monitor(s), port = 6789, targetIQN = pool[/namespace], SCSIid =
image, chapuser/chappassword = cephx id and key. The image is mapped with the
kernel client (rbdsr.krbd), carries the VG VG_XenStorage-<sr uuid>, and sm's
LVM/LVHD SR code does the rest. `shim` gives the running sm shape's classes
(LVMoISCSISR/LVMSR on XCP-ng 8.3 today, LVHDoISCSISR/LVHDSR elsewhere).
"""
import functools
import os
import sys
import time
import xmlrpc.client

from lvm_helpers import pv as lvm_pv
from lvm_helpers.cmd import run as lvm_run
from rbdsr import config as rbd_config
from rbdsr.diversion import DIVERSION_PORT, wants_rbd
from rbdsr.errors import ConfigError, InUseError, NotFoundError, RBDError
from rbdsr.smglue import probexml, shim
from rbdsr.smglue.transport import RBDTransport
from rbdsr.version import read_version

util = shim.util
xs_errors = shim.xs_errors
lvutil = shim.lvutil
scsiutil = shim.scsiutil

OWNER_META_KEY = rbd_config.OWNER_META_KEY
# Features dom0's 4.19 krbd cannot use, or that break sharing between hosts.
UNSHAREABLE_FEATURES = ("exclusive-lock", "object-map", "fast-diff", "deep-flatten", "journaling")
# Grow the PV when the device is at least this much bigger than the VG.
GROW_THRESHOLD = 32 << 20
# What device_state inspects at each end of the device.
WIPE_BYTES = 1 << 20
# Placeholder pool used to validate a probe that has no targetIQN yet.
_PROBE_POOL = "rbdsr-probe"

CAPABILITIES = shim.CAPABILITIES
CONFIGURATION = [list(kv) for kv in getattr(rbd_config, "CONFIG_KEYS", [])] or [
    ["target", "Ceph monitor(s)"], ["port", "6789"], ["targetIQN", "pool"], ["SCSIid", "image"],
    ["chapuser", "cephx id"], ["chappassword", "cephx key"]]

DRIVER_INFO = {
    "name": "RBDSR",
    "description": "LVHD over a Ceph RBD image (kernel client), set up like an iSCSI SR on port 6789",
    "vendor": "RBDSR project",
    "copyright": "(C) RBDSR contributors",
    "driver_version": read_version(),
    "required_api_version": "1.0",
    "capabilities": CAPABILITIES,
    "configuration": CONFIGURATION,
}


def _log(msg):
    util.SMlog("RBDSR: %s" % msg)


def sm_errors(name):
    """Run an SM entry point with timing in SMlog; RBDError -> XenError(e.key)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, *args):
            t0 = time.time()
            _log("%s start (SR %s)" % (name, getattr(self, "uuid", None)))
            try:
                out = fn(self, *args)
            except RBDError as e:
                _log("%s failed after %.2fs: [%s] %s" % (name, time.time() - t0, e.key, e))
                raise xs_errors.XenError(e.key, opterr=str(e))
            except xs_errors.SRException as e:
                _log("%s failed after %.2fs: %s" % (name, time.time() - t0, e))
                raise
            except Exception as e:
                util.logException("RBDSR.%s" % name)
                raise xs_errors.XenError("SMGeneral", opterr="%s: %s" % (type(e).__name__, e))
            _log("%s done in %.2fs" % (name, time.time() - t0))
            return out
        return wrapper
    return deco


def _print_wizard_xml(text):
    """The wizard's XML goes to stderr, as sm's iSCSI probe does. librados sets
    O_NONBLOCK on fd 2 when it connects: XAPI reads stderr through a pipe, so a
    LUN list over 64 KiB would be cut short. Write it blocking."""
    os.set_blocking(sys.stderr.fileno(), True)
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _describe(state, vg):
    if state == lvm_pv.PV:
        return "an LVM PV of volume group %s" % vg if vg else "an LVM PV in no volume group"
    if state == lvm_pv.DATA:
        return "data (non-zero content or a known signature)"
    return state


class RBDSR(shim.ISCSI_SR):
    """LVHD on one RBD image; the RBD transport replaces the iSCSI session."""

    @staticmethod
    def handles(type):
        # Only by its own name: never claim lvmoiscsi for sm's SR.driver() lookups.
        return type == "rbd"

    # -- the transport in place of self.iscsi / self.iscsiSRs ---------------

    @property
    def iscsi(self):
        t = self.__dict__.get("_rbd_transport")
        if t is None:
            t = RBDTransport(self._rbd_config(), util.SMlog)
            self.__dict__["_rbd_transport"] = t
        return t

    @iscsi.setter
    def iscsi(self, value):
        self.__dict__["_rbd_transport"] = value

    @property
    def iscsiSRs(self):
        return [self.iscsi]

    @iscsiSRs.setter
    def iscsiSRs(self, value):
        if value:
            self.iscsi = value[0]

    def _secret_reader(self, uuid):
        if self.session is None:
            raise ConfigError("no XAPI session to read secret %s" % uuid, key="InvalidSecret")
        return util.get_secret(self.session, uuid)

    def _rbd_config(self):
        cfg = self.__dict__.get("_rbd_cfg")
        if cfg is None:
            cfg = rbd_config.TargetConfig.from_dconf(self.dconf, secret_reader=self._secret_reader)
            self.__dict__["_rbd_cfg"] = cfg
        return cfg

    # -- load ----------------------------------------------------------------

    @sm_errors("load")
    def load(self, sr_uuid):
        if not sr_uuid:
            sr_uuid = util.gen_uuid()  # a probe: sm works on a temporary uuid
        _log("load %s for %s" % (sr_uuid, self.original_srcmd.cmd))
        if util.isVDICommand(self.original_srcmd.cmd):
            # Like sm: no session work for VDI commands; the transport is built on use.
            if not self.dconf.get("SCSIid"):
                raise xs_errors.XenError("ConfigSCSIid")
            self.SCSIid = self.dconf["SCSIid"]
        else:
            self.create_iscsi_sessions(sr_uuid)
        self._set_lvm_device()
        shim.LVM_SR.load(self, sr_uuid)

    def _set_lvm_device(self):
        """SR.__init__ pointed LVM_DEVICE at /dev/disk/by-scsid/<SCSIid>; ours is the stable path."""
        try:
            os.environ["LVM_DEVICE"] = self.iscsi.device_path()
        except RBDError:
            os.environ.pop("LVM_DEVICE", None)

    def create_iscsi_sessions(self, sr_uuid):
        """Validate the device-config and answer the wizard's first two steps."""
        if not str(self.dconf.get("targetIQN", "") or "").strip():
            self._probe_pools()  # raises ConfigTargetIQNMissing after printing the pools
        transport = self.iscsi
        if not transport.image:
            luns = transport.list_luns()
            self.LUNs = dict((lun.SCSIid, lun) for lun in luns)
            _print_wizard_xml(probexml.luns_xml(luns))
            raise xs_errors.XenError("ConfigSCSIid")
        self.SCSIid = transport.image

    def _probe_pools(self):
        probe_dconf = dict(self.dconf)
        probe_dconf["targetIQN"] = _PROBE_POOL
        cfg = rbd_config.TargetConfig.from_dconf(probe_dconf, secret_reader=self._secret_reader)
        transport = RBDTransport(cfg, util.SMlog)
        try:
            t0 = time.time()
            pools = transport.backend().list_pools()
            _log("%d rbd pools listed in %.2fs" % (len(pools), time.time() - t0))
        finally:
            transport.close()
        # The wizard sends IPAddress back as target and Port as port: the port must stay
        # the diversion port, so a monitor on another port keeps it in the address.
        host, mon_port = cfg.monitors[0]
        address = host if mon_port == rbd_config.DEFAULT_MON_PORT else rbd_config.format_addr(host, mon_port)
        _print_wizard_xml(probexml.targets_xml(pools, address, DIVERSION_PORT))
        raise xs_errors.XenError("ConfigTargetIQNMissing")

    # -- device path, size ---------------------------------------------------

    def _pathrefresh(self, obj=None):
        """sm: dconf['device'] from the SCSIid's multipath path; ours is the stable RBD path."""
        self.dconf["device"] = self.iscsi.device_path()
        shim.LVM_SR.load(self, self.uuid)

    def _refresh_once(self):
        """_pathrefresh unless this process already did it (sm calls update and scan
        inside sr_attach: each reload costs a vgs and an lvs)."""
        if self.dconf.get("device") != self.iscsi.device_path():
            self._pathrefresh()

    def _refresh_size(self):
        """No SCSI rescan: krbd follows the image size; make it re-read the header now."""
        self.iscsi.refresh()
        return True

    def _expand_size(self):
        """Grow the PV when the image grew (checked pvresize), warn when the
        image is bigger than what the pool can still hold."""
        if self.__dict__.get("_rbd_expanded"):
            return  # once per process: sm's attach calls it, then update again
        self.__dict__["_rbd_expanded"] = True
        dev = self.iscsi.device_path()
        dev_size = lvm_pv.device_size(dev)
        vg_size = lvutil._getVGstats(self.vgname)["physical_size"]
        if dev_size >= vg_size + GROW_THRESHOLD:
            t0 = time.time()
            new = lvm_pv.resize(dev)
            _log("PV %s grown from VG size %d to PV size %d (image %d bytes) in %.2fs"
                 % (dev, vg_size, new, dev_size, time.time() - t0))
        # Not on attach: a Ceph connection there costs seconds; XAPI scans SRs regularly.
        if self.cmd in ("sr_scan", "sr_update"):
            self._warn_overcommit(dev_size)

    def _warn_overcommit(self, image_size):
        try:
            _total, avail = self.iscsi.backend().pool_capacity(self.iscsi.cfg.pool)
        except RBDError as e:
            _log("pool capacity unknown (%s); no over-commit check" % e)
            return
        if image_size > avail:
            _log("WARNING: image %s is %d bytes but pool %s can hold only %d more bytes; "
                 "writes will fail when the pool fills" % (self.iscsi.image, image_size,
                                                           self.iscsi.cfg.pool, avail))

    # -- checks ----------------------------------------------------------------

    def _device_state(self):
        return lvm_pv.device_state(self.iscsi.device_path())

    def _check_holds_our_vg(self):
        state, vg = self._device_state()
        if state != lvm_pv.PV or vg != self.vgname:
            raise InUseError("image %s does not carry this SR's volume group %s (it holds %s)"
                             % (self.iscsi.image_id().spec(), self.vgname, _describe(state, vg)))

    def _check_pvs(self):
        """RBD's checkPVScsiIds: every PV of our VG must be our image's device."""
        res = lvm_run(["pvs", "--noheadings", "--separator", "|", "-o", "pv_name,vg_name"])
        want = os.path.realpath(self.iscsi.device_path())
        for line in res.out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 2 and parts[1] == self.vgname and os.path.realpath(parts[0]) != want:
                raise InUseError("volume group %s has a PV %s that is not image %s"
                                 % (self.vgname, parts[0], self.iscsi.image_id().spec()))

    def _claimed_by(self):
        """uuid of another SR whose PBDs name the same pool and image, or None."""
        if self.session is None:
            return None
        cfg = self.iscsi.cfg
        pbds = self.session.xenapi.PBD.get_all_records()
        for rec in pbds.values():
            if self.sr_ref and rec.get("SR") == self.sr_ref:
                continue
            dc = rec.get("device_config", {})
            if wants_rbd(dc) and dc.get("SCSIid") == cfg.image and \
                    str(dc.get("targetIQN", "")).strip() == self.iscsi.targetIQN:
                try:
                    return self.session.xenapi.SR.get_uuid(rec["SR"])
                except Exception:  # noqa: BLE001 - a dangling PBD still claims the image
                    return rec.get("SR")
        return None

    def _wipe_lvm_leftovers(self):
        """Zero the first and last MiB (what vgremove/pvremove leave: the metadata
        area), so device_state says blank again. Only called on our own image."""
        dev = self.iscsi.device_path()
        size = lvm_pv.device_size(dev)
        chunk = min(WIPE_BYTES, size)
        fd = os.open(dev, os.O_WRONLY | os.O_CLOEXEC)
        try:
            zeros = bytes(chunk)
            for offset in sorted(set([0, max(0, size - chunk)])):
                os.pwrite(fd, zeros, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        _log("wiped LVM leftovers of %s; it now reads as %s" % (dev, self._device_state()[0]))

    def _devserial(self):
        return "rbd-%s" % self.iscsi.serial()

    def _map_our_image(self, sr_uuid):
        """Map the image, wait for its device, refuse it unless it carries this
        SR's VG, and point sm's LVM SR code at it (attach, delete, HA attach)."""
        self.iscsi.attach(sr_uuid)
        self.iscsi._attach_LUN_bySCSIid(self.SCSIid)
        self._check_holds_our_vg()
        self._pathrefresh()

    def _unmap_after_failure(self, was_mapped):
        """Roll back to unmapped when this call did the map."""
        if was_mapped:
            return
        try:
            if lvm_run(["vgs", self.vgname], check=False).rc == 0:
                lvm_run(["vgchange", "-an", self.vgname], check=False)
            self.iscsi.detach(self.uuid)
        except Exception as e:  # noqa: BLE001 - the original error matters more
            _log("rollback: could not unmap %s: %s" % (self.iscsi.image, e))

    # -- SR operations -----------------------------------------------------------

    @sm_errors("create")
    def create(self, sr_uuid, size):
        t = self.iscsi
        cfg = t.cfg
        spec = t.image_id().spec()
        other = self._claimed_by()
        if other:
            raise InUseError("image %s is already used by SR %s" % (spec, other))
        backend = t.backend()
        t.learn_fsid()
        try:
            info = backend.image_info(cfg.pool, cfg.namespace, cfg.image)
        except NotFoundError:
            info = None
        created = False
        if info is None:
            nbytes = int(size) if size and int(size) > 0 else cfg.size
            if not nbytes:
                raise ConfigError("image %s does not exist; give its size (device-config size=, or "
                                  "physical-size) to create it" % spec, key="ConfigSCSIid")
            backend.create_image(cfg.pool, cfg.namespace, cfg.image, nbytes)
            backend.set_meta(cfg.pool, cfg.namespace, cfg.image, OWNER_META_KEY, sr_uuid)
            created = True
            _log("created image %s (%d bytes, layering only), tagged %s=%s"
                 % (spec, nbytes, OWNER_META_KEY, sr_uuid))
            tag = sr_uuid
        else:
            bad = [f for f in (info.features or []) if f in UNSHAREABLE_FEATURES]
            if bad:
                raise ConfigError("image %s has features %s that dom0's kernel cannot share between "
                                  "hosts; disable them (rbd feature disable %s %s)"
                                  % (spec, ", ".join(bad), spec, " ".join(bad)), key="ConfigSCSIid")
            tag = backend.get_meta(cfg.pool, cfg.namespace, cfg.image, OWNER_META_KEY)
        was_mapped = t.attached
        try:
            t.attach(sr_uuid)
            t._attach_LUN_bySCSIid(cfg.image)
            state, vg = self._device_state()
            ours = tag == sr_uuid and state == lvm_pv.PV and vg == self.vgname
            if state != lvm_pv.BLANK and not ours:
                raise InUseError("refusing to create an SR on image %s: it holds %s; RBDSR only formats "
                                 "a blank image (choose another image, or wipe this one if its content "
                                 "is not needed)" % (spec, _describe(state, vg)))
            if tag != sr_uuid:
                if tag:
                    _log("image %s was tagged by SR %s but is blank; re-tagging" % (spec, tag))
                backend.set_meta(cfg.pool, cfg.namespace, cfg.image, OWNER_META_KEY, sr_uuid)
            self._pathrefresh()
            shim.LVM_SR.create(self, sr_uuid, size)
            scsiutil.add_serial_record(self.session, self.sr_ref, self._devserial())
        except BaseException:
            self._unmap_after_failure(was_mapped)
            if created:
                try:
                    backend.remove_image(cfg.pool, cfg.namespace, cfg.image, sr_uuid)
                    _log("removed image %s created by the failed sr_create" % spec)
                except Exception as e:  # noqa: BLE001
                    _log("could not remove image %s after the failed sr_create: %s" % (spec, e))
            raise
        if not was_mapped:
            t.detach(sr_uuid)

    @sm_errors("attach")
    def attach(self, sr_uuid):
        was_mapped = self.iscsi.attached
        try:
            self._map_our_image(sr_uuid)
            shim.LVM_SR.attach(self, sr_uuid)
            self._check_pvs()
            if self.dconf.get("SRmaster") == "true":
                scsiutil.add_serial_record(self.session, self.sr_ref, self._devserial())
        except BaseException:
            self._unmap_after_failure(was_mapped)
            raise
        self._setMultipathableFlag(SCSIid=self.SCSIid)

    @sm_errors("detach")
    def detach(self, sr_uuid):
        if self.iscsi.attached:
            self._pathrefresh()
            shim.LVM_SR.detach(self, sr_uuid)
        self.iscsi.detach(sr_uuid)

    @sm_errors("delete")
    def delete(self, sr_uuid):
        t = self.iscsi
        cfg = t.cfg
        was_mapped = t.attached
        try:
            self._map_our_image(sr_uuid)
            shim.LVM_SR.delete(self, sr_uuid)
            # It carried our VG a moment ago: leave it blank so a new SR can use it.
            self._wipe_lvm_leftovers()
        except BaseException:
            self._unmap_after_failure(was_mapped)
            raise
        t.detach(sr_uuid)
        if cfg.delete_image:
            t.backend().remove_image(cfg.pool, cfg.namespace, cfg.image, sr_uuid)
            _log("removed image %s (delete_image=true)" % t.image_id().spec())

    @sm_errors("scan")
    def scan(self, sr_uuid):
        # sm also scans after a failed attach (SRCommand's finally): say so plainly
        if not self.iscsi.attached:
            raise xs_errors.XenError("SRUnavailable", opterr="image %s is not mapped on this host: "
                                     "the SR is not attached here" % self.iscsi.image_id().spec())
        self._refresh_once()
        shim.LVM_SR.scan(self, sr_uuid)

    @sm_errors("update")
    def update(self, sr_uuid):
        if self.iscsi.attached:
            self._refresh_once()
            if self.dconf.get("SRmaster") == "true" and not self.__dict__.get("_rbd_expanded") \
                    and lvutil._checkVG(self.vgname):
                self._expand_size()
        shim.LVM_SR.update(self, sr_uuid)

    @sm_errors("probe")
    def probe(self):
        self.uuid = util.gen_uuid()
        t = self.iscsi
        was_mapped = t.attached
        try:
            t.attach(self.uuid)
        except NotFoundError:
            if not self._image_absent_from_pool():
                raise
            _log("probe: image %s does not exist (sr-create can create it)" % t.image_id().spec())
            return probexml.empty_srlist()
        try:
            t._attach_LUN_bySCSIid(self.SCSIid)
            self._pathrefresh()
            out = shim.LVM_SR.probe(self)
        finally:
            if not was_mapped:
                t.detach(self.uuid)
        return out

    def _image_absent_from_pool(self):
        """True when the pool exists and lists no image of our name (so a failed
        map means "no such image yet", not "no such pool" or "no access")."""
        t = self.iscsi
        try:
            names = [i.name for i in t.backend().list_images(t.cfg.pool, t.cfg.namespace)]
        except RBDError:
            return False
        return t.cfg.image not in names

    @sm_errors("check_sr")
    def check_sr(self, sr_uuid):
        if not self.iscsi.attached:
            _log("check_sr: image %s is not mapped on this host" % self.iscsi.image)

    def vdi(self, uuid):
        return RBDVDI(self, uuid)


class RBDVDI(shim.ISCSI_VDI):
    """LVHD VDI whose HA config carries RBD device-config (no iSCSI fields)."""

    def generate_config(self, sr_uuid, vdi_uuid):
        util.SMlog("RBDVDI.generate_config")
        if not lvutil._checkLV(self.path):
            raise xs_errors.XenError("VDIUnavailable")
        dconf = dict(self.sr.dconf)
        for key in ("localIQN", "device", "SRmaster", "multiSession"):
            dconf.pop(key, None)
        dconf["multipathing"] = self.sr.mpath
        dconf["multipathhandle"] = self.sr.mpathhandle
        if "chappassword_secret" in dconf:
            # As sm does: the config must work without a XAPI session (HA start-up).
            dconf["chappassword"] = util.get_secret(self.session, dconf.pop("chappassword_secret"))
        config = {"device_config": dconf, "sr_uuid": sr_uuid, "vdi_uuid": vdi_uuid,
                  "command": "vdi_attach_from_config"}
        text = xmlrpc.client.dumps((config,), "vdi_attach_from_config")
        return xmlrpc.client.dumps((text,), "", True)

    def attach_from_config(self, sr_uuid, vdi_uuid):
        util.SMlog("RBDVDI.attach_from_config")
        try:
            self.sr._map_our_image(sr_uuid)
            return shim.LVM_VDI.attach(self, sr_uuid, vdi_uuid)
        except RBDError as e:
            _log("attach_from_config failed: [%s] %s" % (e.key, e))
            raise xs_errors.XenError("SRUnavailable", opterr="Unable to attach the heartbeat disk: %s" % e)
        except Exception:
            util.logException("RBDVDI.attach_from_config")
            raise xs_errors.XenError("SRUnavailable", opterr="Unable to attach the heartbeat disk")


def main():
    """The XAPI entry point: the XML-RPC call is argv[1]."""
    shim.SRCommand.run(RBDSR, DRIVER_INFO)
