"""RBDTransport: the kernel RBD mapping RBDSR uses where sm's iSCSI driver
uses its session object (BaseISCSISR), and the operation's one Credentials.

Real sm reads nothing from it: every LVHDoISCSISR / LVMoISCSISR method that
touches `self.iscsi` (create_iscsi_sessions, attach, detach, create, delete,
probe, scan, check_sr, _LUNprint, print_LUNs_XML, _getSCSIid_from_LUN) is
either overridden by RBDSR or only reached from one that is -- checked in all
four trees of ../shared/sm. So it keeps only what RBDSR's own overrides call,
named for what it does: attach = map the image (shared, no lock), detach =
unmap, `_attach_LUN_bySCSIid` = check the mapped device is there (the names
RBDSR's overrides of sm's methods call), `targetIQN` = pool[/namespace].

Credentials are resolved once per operation (`credentials()`), in SSH mode
through the SSH backend; the map, the librbd backend and the HA config all
take that one object.

No sm import here: logging goes through the `log` callable given by the driver.
"""
import os
import time

from rbdsr import credentials as rbd_credentials
from rbdsr import krbd, sysfs
from rbdsr.bounded import run_bounded
from rbdsr.errors import ConfigError, MapError, RBDError
from rbdsr.smglue import probexml

REFRESH_TIMEOUT = 30.0


def _write_attr(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class RBDTransport(object):
    def __init__(self, cfg, log, backend_opener=None):
        self.cfg = cfg
        self._log = log
        self._backend_opener = backend_opener
        self._backend = None
        self._creds = None
        self.targetIQN = cfg.pool + ("/" + cfg.namespace if cfg.namespace else "")
        self.fsid = None
        self.mapped = None  # MappedDevice after attach

    # -- identity and paths ------------------------------------------------

    @property
    def image(self):
        return self.cfg.image

    def image_id(self):
        if not self.cfg.image:
            raise ConfigError("no image (SCSIid) given", key="ConfigSCSIid")
        return krbd.ImageId(self.fsid, self.cfg.pool, self.cfg.namespace, self.cfg.image)

    def device_path(self):
        """The stable path of the image on every host (a symlink to /dev/rbdN)."""
        return krbd.stable_path(self.image_id())

    @property
    def path(self):
        """Where the image's device link lives (sm: the iSCSI session's LUN directory)."""
        if self.cfg.image:
            return os.path.dirname(self.device_path())
        return os.path.join(krbd.STABLE_ROOT, self.cfg.pool, self.cfg.namespace or krbd.DEFAULT_NS_COMPONENT)

    @property
    def attached(self):
        """True when the image is mapped on this host."""
        return bool(self.cfg.image) and krbd.find_mapped(self.image_id()) is not None

    def device_fsid(self):
        """Cluster fsid of the mapped device, as the kernel reports it (or None)."""
        dev_id = krbd.find_mapped(self.image_id())
        if dev_id is None:
            return None
        for info in sysfs.list_mapped():
            if info.dev_id == dev_id:
                return info.fsid or None
        return None

    def serial(self):
        """Stable serial of the image (the wizard's LUN serial, the SR's devserial)."""
        fsid = self.fsid or self.device_fsid()
        return probexml.stable_serial(fsid, self.cfg.pool, self.cfg.namespace, self.cfg.image)

    # -- administration (lazy: slaves attaching never need it) ---------------

    def credentials(self):
        """The operation's Credentials, resolved once (rbdsr.credentials)."""
        if self._creds is None:
            fetch = None
            if self.cfg.auth_mode == "ssh":
                def fetch():
                    return self.backend().fetch_credentials()
            t0 = time.time()
            self._creds = rbd_credentials.resolve(self.cfg, fetch)
            self._log("RBDSR: credentials of %s: %s, in %.2fs"
                      % (self._creds.entity, self._creds.source, time.time() - t0))
        return self._creds

    def backend(self):
        if self._backend is None:
            opener = self._backend_opener
            if opener is None:
                from rbdsr.backends import open_backend as opener
            t0 = time.time()
            creds = None if self.cfg.auth_mode == "ssh" else self.credentials()
            self._backend = opener(self.cfg, creds)
            self._log("RBDSR: connected to Ceph (%s backend) in %.2fs"
                      % (getattr(self._backend, "name", "?"), time.time() - t0))
        return self._backend

    def learn_fsid(self):
        """Ask the cluster for its fsid so maps are pinned to that cluster."""
        if self.fsid is None:
            self.fsid = self.backend().fsid()
        return self.fsid

    def close(self):
        if self._backend is not None:
            try:
                self._backend.close()
            finally:
                self._backend = None

    # -- map / unmap ---------------------------------------------------------

    def attach(self, sr_uuid, read_only=False):
        """Map the image (idempotent). Without an image (probe) there is nothing to map."""
        if not self.cfg.image:
            return
        t0 = time.time()
        self.mapped = krbd.map_from_config(self.cfg, self.credentials(), fsid=self.fsid, read_only=read_only,
                                           log=self._log)
        self._log("RBDSR: %s mapped as %s (%s) in %.2fs"
                  % (self.image_id().spec(), self.mapped.dev_path, self.mapped.stable_path,
                     time.time() - t0))

    def _attach_LUN_bySCSIid(self, SCSIid):
        """The mapped device of image `SCSIid` is there (mapping it when needed)."""
        if SCSIid != self.cfg.image:
            raise ConfigError("SCSIid %r is not the configured image %r" % (SCSIid, self.cfg.image),
                              key="ConfigSCSIid")
        if self.mapped is None:
            self.attach(None)
        if not os.path.exists(self.device_path()):
            raise MapError("%s is mapped but %s is missing" % (self.image_id().spec(), self.device_path()))

    def detach(self, sr_uuid):
        """Unmap the image (idempotent); a busy device is an InUseError, never forced."""
        if not self.cfg.image:
            return
        t0 = time.time()
        done = krbd.unmap(self.image_id(), timeout=self.cfg.timeout)
        self.mapped = None
        self._log("RBDSR: %s %s in %.2fs" % (self.image_id().spec(),
                                              "unmapped" if done else "was not mapped", time.time() - t0))

    def refresh(self):
        """sm rescans the SCSI bus here. krbd follows image size changes by itself
        (header watch); asking it to re-read the header now makes a grow visible
        at once. Bounded; a failure only delays the new size."""
        if not self.cfg.image:
            return
        dev_id = krbd.find_mapped(self.image_id())
        if dev_id is None:
            return
        path = os.path.join(sysfs.devices_dir(), str(dev_id), "refresh")
        if not os.path.exists(path):
            return
        try:
            run_bounded(lambda: _write_attr(path, b"1"), min(self.cfg.timeout, REFRESH_TIMEOUT),
                        "refresh of the image size")
        except (OSError, RBDError) as e:
            self._log("RBDSR: refreshing rbd%d failed (%s); the size may lag" % (dev_id, e))

    def list_luns(self):
        """The pool's images as LUNs (one listing pass)."""
        backend = self.backend()
        fsid = self.learn_fsid()
        t0 = time.time()
        images = backend.list_images(self.cfg.pool, self.cfg.namespace)
        self._log("RBDSR: %d images in %s listed in %.2fs" % (len(images), self.targetIQN, time.time() - t0))
        return probexml.luns_from_images(images, fsid, self.cfg.pool, self.cfg.namespace)
