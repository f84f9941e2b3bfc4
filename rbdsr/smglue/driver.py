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

from lvm_helpers import devio
from lvm_helpers import pv as lvm_pv
from lvm_helpers.cmd import run as lvm_run
from rbdsr import callcheck
from rbdsr import config as rbd_config
from rbdsr import credentials as rbd_credentials
from rbdsr import imageguard, krbd, monaddr, sysfs
from rbdsr.diversion import DIVERSION_PORT, wants_rbd
from rbdsr.errors import (CephError, ConfigError, InUseError, NotFoundError, RBDError, TimeoutError_,
                          UnreachableError)
from rbdsr.secret import contains_secret, looks_like_key
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
# Placeholder pool used to validate a probe that has no targetIQN yet.
_PROBE_POOL = "rbdsr-probe"

CAPABILITIES = shim.CAPABILITIES
CONFIGURATION = [list(kv) for kv in rbd_config.CONFIG_KEYS]

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


# Field names are not secrets, even when a password happens to be spelled like
# part of one ("password" inside "chappassword"): they are blanked before the check.
_FIELD_NAMES = sorted((k for k, _ in rbd_config.CONFIG_KEYS), key=len, reverse=True)


def _safe(message):
    """Last guard before SMlog and the XAPI fault: no key-shaped text, no live secret."""
    probe = message
    for name in _FIELD_NAMES:
        probe = probe.replace(name, " ")
    if looks_like_key(message) or contains_secret(probe):
        return "(message withheld: it quoted a secret)"
    return message


def sm_errors(name):
    """Run an SM entry point with timing in SMlog; RBDError -> XenError(e.key)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, *args):
            t0 = time.time()
            _log("%s start (SR %s)" % (name, callcheck.shown_uuid(getattr(self, "uuid", None))))
            try:
                out = fn(self, *args)
            except RBDError as e:
                msg = _safe(str(e))
                _log("%s failed after %.2fs: [%s] %s" % (name, time.time() - t0, e.key, msg))
                raise xs_errors.XenError(e.key, opterr=msg)
            except xs_errors.SRException as e:
                _log("%s failed after %.2fs: %s" % (name, time.time() - t0, e))
                raise
            except Exception as e:
                util.logException("RBDSR.%s" % name)
                raise xs_errors.XenError("SMGeneral", opterr=_safe("%s: %s" % (type(e).__name__, e)))
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
    if state == lvm_pv.UNKNOWN:
        return "content that could not be examined (blkid gave no answer)"
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
        # before sm builds lock paths and VG names from the call, or logs it
        callcheck.check(self.original_srcmd.cmd, self.srcmd.params)
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
            # sm's LVM SR, loading next, sees our VG only if the image is mapped already
            self.__dict__["_rbd_loaded_mapped"] = self._mapped_quietly()
        self._set_lvm_device()
        shim.LVM_SR.load(self, sr_uuid)

    def _mapped_quietly(self):
        """iscsi.attached, or False (reload later: the safe side) when the lookup fails;
        the operation itself then reports that failure."""
        try:
            return self.iscsi.attached
        except RBDError:
            return False

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
        address = host if mon_port == monaddr.DEFAULT_PORT else monaddr.format_addr(host, mon_port)
        _print_wizard_xml(probexml.targets_xml(pools, address, DIVERSION_PORT))
        raise xs_errors.XenError("ConfigTargetIQNMissing")

    # -- device path, size ---------------------------------------------------

    def _pathrefresh(self, obj=None):
        """sm: dconf['device'] from the SCSIid's multipath path; ours is the stable RBD path.
        sm's LVM SR is reloaded (a vgs, an lvs, outside sr_attach its MGT check) only when it
        loaded before the image was mapped here: else it already saw our VG (sr_detach)."""
        self.dconf["device"] = self.iscsi.device_path()
        if self.__dict__.get("_rbd_loaded_mapped"):
            return
        shim.LVM_SR.load(self, self.uuid)
        self.__dict__["_rbd_loaded_mapped"] = True

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
        grown = dev_size >= vg_size + GROW_THRESHOLD
        if grown:
            t0 = time.time()
            new = lvm_pv.resize(dev)
            _log("PV %s grown from VG size %d to PV size %d (image %d bytes) in %.2fs"
                 % (dev, vg_size, new, dev_size, time.time() - t0))
        # The over-commit check needs a Ceph connection (seconds on a busy host), so not on
        # every attach and every periodic sr_scan of XAPI's: when the image grew, and on an
        # admin's sr_update. A pool filling up otherwise is Ceph's own POOL_NEAR_FULL warning.
        if grown or self.cmd == "sr_update":
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
        """device_state of our device, read in a child bounded by the SR's timeout."""
        return devio.device_state(self.iscsi.device_path(), self.iscsi.cfg.timeout)

    def _lvm(self, argv, check=True):
        return lvm_run(argv, self.iscsi.cfg.timeout, check=check)

    def _check_holds_our_vg(self):
        state, vg = self._device_state()
        if state != lvm_pv.PV or vg != self.vgname:
            raise InUseError("image %s does not carry this SR's volume group %s (it holds %s)"
                             % (self.iscsi.image_id().spec(), self.vgname, _describe(state, vg)))

    def _check_pvs(self):
        """RBD's checkPVScsiIds: every PV of our VG must be our image's device."""
        res = self._lvm(["pvs", "--noheadings", "--separator", "|", "-o", "pv_name,vg_name"])
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

    def _discard_image(self):
        """Discard the whole device (the kernel client deletes the objects), so
        neither the LVM metadata nor any VDI's data is left for the next SR on
        the image to read. Only called on our own image, after sm removed the VG."""
        dev = self.iscsi.device_path()
        t0 = time.time()
        done = devio.discard(dev, self.iscsi.cfg.timeout)
        state = self._device_state()[0]
        _log("discarded %s bytes of %s in %.2fs; it now reads as %s" % (done, dev, time.time() - t0, state))
        if state != lvm_pv.BLANK:
            raise CephError("image %s still reads as %s after the discard" % (self.iscsi.image_id().spec(), state))

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
        """Roll back to unmapped when this call did the map. Not while the
        device has requests in flight (the cluster stopped answering): LVM
        and the unmap would wait for them; they fail after the map's
        osd_request_timeout, and the next attach, detach or the boot cleanup
        finds the mapping."""
        if was_mapped:
            return
        try:
            mapped = self.iscsi.mapped
            busy = devio.stuck(mapped.dev_path) if mapped else None
            if busy:
                _log("rollback: %s has %d requests in flight to an unresponsive cluster; leaving it mapped "
                     "(they fail within osd_timeout=%ss)" % (self.iscsi.image, busy, self.iscsi.cfg.osd_timeout))
                return
            if self._lvm(["vgs", self.vgname], check=False).rc == 0:
                self._lvm(["vgchange", "-an", self.vgname], check=False)
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
        created = self._create_image_if_absent(backend, size)
        # One sr_create per image in the whole cluster from here on.
        claim = imageguard.CreateClaim(backend, cfg, sr_uuid, _log)
        claim.acquire()
        was_mapped = t.attached
        try:
            info = backend.image_info(cfg.pool, cfg.namespace, cfg.image)
            bad = [f for f in (info.features or []) if f in UNSHAREABLE_FEATURES]
            if bad:
                raise ConfigError("image %s has features %s that dom0's kernel cannot share between "
                                  "hosts; disable them (rbd feature disable %s %s)"
                                  % (spec, ", ".join(bad), spec, " ".join(bad)), key="ConfigSCSIid")
            if info.parent:
                # its data is partly the parent snapshot's: never provably blank nor ours alone
                raise ConfigError("image %s is a clone of %s; RBDSR needs a standalone image (rbd flatten %s)"
                                  % (spec, info.parent, spec), key="ConfigSCSIid")
            tag = backend.get_meta(cfg.pool, cfg.namespace, cfg.image, OWNER_META_KEY)
            if tag != sr_uuid:
                imageguard.check_not_open(backend, cfg, self._own_client_addrs())
            t.attach(sr_uuid)
            t._attach_LUN_bySCSIid(cfg.image)
            state, vg = self._device_state()
            # Blank, or our own VG from an earlier attempt of this same sr_create.
            ours = tag == sr_uuid and state == lvm_pv.PV and vg == self.vgname
            if state != lvm_pv.BLANK and not ours:
                raise InUseError("refusing to create an SR on image %s: it holds %s; RBDSR only formats "
                                 "a blank image (choose another image, or wipe this one if its content "
                                 "is not needed)" % (spec, _describe(state, vg)))
            if tag != sr_uuid:
                # The ends read blank; Ceph knows whether anything else was ever written.
                imageguard.check_never_written(backend, cfg)
                if tag:
                    _log("image %s was tagged by SR %s but was never written; re-tagging" % (spec, tag))
                backend.set_meta(cfg.pool, cfg.namespace, cfg.image, OWNER_META_KEY, sr_uuid)
            # no reload of sm's LVM SR (a vgs, an lvs): its create asks LVM itself (_checkVG)
            self.dconf["device"] = t.device_path()
            shim.LVM_SR.create(self, sr_uuid, size)
            scsiutil.add_serial_record(self.session, self.sr_ref, self._devserial())
        except BaseException as e:
            self._unmap_after_failure(was_mapped)
            if isinstance(e, (TimeoutError_, UnreachableError)):
                # The cluster stopped answering: cleaning up in Ceph would only add
                # timeouts. This SR's next sr_create takes over the image and its lock.
                _log("Ceph did not answer; image %s and its creation lock are left for this SR's "
                     "next sr_create" % spec)
                raise
            if created:
                try:
                    backend.remove_image(cfg.pool, cfg.namespace, cfg.image, sr_uuid)
                    _log("removed image %s created by the failed sr_create" % spec)
                except Exception as e:  # noqa: BLE001
                    _log("could not remove image %s after the failed sr_create: %s" % (spec, e))
            claim.release()
            raise
        claim.release()
        if not was_mapped:
            t.detach(sr_uuid)

    def _create_image_if_absent(self, backend, size):
        """Create the image (layering only) when it does not exist; True when
        this call created it (losing a creation race to another pool is not)."""
        t = self.iscsi
        cfg = t.cfg
        spec = t.image_id().spec()
        try:
            backend.image_info(cfg.pool, cfg.namespace, cfg.image)
            return False
        except NotFoundError:
            pass
        nbytes = int(size) if size and int(size) > 0 else cfg.size
        if not nbytes:
            raise ConfigError("image %s does not exist; give its size (device-config size=, or "
                              "physical-size) to create it" % spec, key="ConfigSCSIid")
        if cfg.pool not in backend.list_pools():
            # a CephFS or RGW pool is not ours to put an image in
            raise ConfigError("pool %s is not an rbd pool (no rbd application); RBDSR creates images only "
                              "in rbd pools" % cfg.pool, key="ConfigTargetIQNMissing")
        try:
            backend.create_image(cfg.pool, cfg.namespace, cfg.image, nbytes)
        except CephError:
            try:
                backend.image_info(cfg.pool, cfg.namespace, cfg.image)
            except NotFoundError:
                raise
            _log("image %s appeared while we created it (another sr_create?)" % spec)
            return False
        _log("created image %s (%d bytes, layering only)" % (spec, nbytes))
        return True

    def _own_client_addrs(self):
        """Our kernel client's instance ("ip:port/nonce") when the image is mapped here."""
        dev_id = krbd.find_mapped(self.iscsi.image_id())
        addr = sysfs.client_addr(dev_id) if dev_id is not None else None
        return [addr] if addr else []

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
            # It carried our VG a moment ago: leave nothing of it for the next SR.
            self._discard_image()
        except BaseException:
            self._unmap_after_failure(was_mapped)
            raise
        t.detach(sr_uuid)
        if cfg.delete_image:
            t.backend().remove_image(cfg.pool, cfg.namespace, cfg.image, sr_uuid)
            _log("removed image %s (delete_image=true)" % t.image_id().spec())

    def _check_answering(self):
        """SRUnavailable at once when our device has requests stuck in flight:
        the cluster is not answering, and LVM would wait for them (up to the
        map's osd_request_timeout) -- e.g. the scan sm runs after an attach
        that failed on a dead cluster and left the device mapped."""
        mapped = krbd.find_mapped(self.iscsi.image_id())
        busy = devio.stuck(krbd.dev_path(mapped)) if mapped is not None else None
        if busy:
            raise xs_errors.XenError("SRUnavailable", opterr="image %s has %d requests in flight that Ceph "
                                     "does not answer" % (self.iscsi.image_id().spec(), busy))

    @sm_errors("scan")
    def scan(self, sr_uuid):
        # sm also scans after a failed attach (SRCommand's finally): say so plainly
        if not self.iscsi.attached:
            raise xs_errors.XenError("SRUnavailable", opterr="image %s is not mapped on this host: "
                                     "the SR is not attached here" % self.iscsi.image_id().spec())
        self._check_answering()
        self._refresh_once()
        shim.LVM_SR.scan(self, sr_uuid)

    @sm_errors("update")
    def update(self, sr_uuid):
        if self.iscsi.attached:
            self._check_answering()
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
            t.attach(self.uuid, read_only=not was_mapped)  # a look only: map read-only
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
        """The HA (attach-from-config) call: it must work without a XAPI session,
        so it carries the cephx user and key resolved for this operation -- in
        SSH mode the fetched least-privilege key, never the SSH login/password."""
        util.SMlog("RBDVDI.generate_config")
        if not lvutil._checkLV(self.path):
            raise xs_errors.XenError("VDIUnavailable")
        try:
            creds = self.sr.iscsi.credentials()
        except RBDError as e:
            raise xs_errors.XenError(e.key, opterr=_safe(str(e)))
        dconf = rbd_credentials.ha_device_config(self.sr.dconf, creds, {
            "multipathing": self.sr.mpath, "multipathhandle": self.sr.mpathhandle})
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
