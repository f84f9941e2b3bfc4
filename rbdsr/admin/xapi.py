"""The SR as XAPI knows it: record, PBDs (which hosts have it attached) and
device-config with its secret resolved, through a local XenAPI session as
sm's own tools open one on dom0."""
from rbdsr.admin.names import UUID_RE
from rbdsr.config import TargetConfig
from rbdsr.diversion import RULE, wants_rbd
from rbdsr.errors import ConfigError, NotFoundError, RBDError

SR_TYPE = "lvmoiscsi"


class XapiError(RBDError):
    key = "SMGeneral"


def _failure_code(e):
    details = getattr(e, "details", None)
    return details[0] if details else e.__class__.__name__


class HostPBD(object):
    __slots__ = ("host_uuid", "host_name", "attached", "ref")

    def __init__(self, ref, host_uuid, host_name, attached):
        self.ref = ref
        self.host_uuid = host_uuid
        self.host_name = host_name
        self.attached = attached


class SRInfo(object):
    """uuid, ref, name_label, dconf (device-config, secrets still as uuids),
    pbds [HostPBD], cfg (TargetConfig with the secret read)."""

    def __init__(self, ref, uuid, name_label, dconf, pbds, cfg):
        self.ref = ref
        self.uuid = uuid
        self.name_label = name_label
        self.dconf = dconf
        self.pbds = pbds
        self.cfg = cfg

    def attached_hosts(self):
        return [p.host_name or p.host_uuid for p in self.pbds if p.attached]


class Xapi(object):
    """A logged-in local session (context manager)."""

    def __init__(self, xenapi_module=None):
        if xenapi_module is None:
            try:
                import XenAPI as xenapi_module
            except ImportError:
                raise XapiError("the XenAPI python module is not available: run rbdsr on a pool host (dom0)")
        self.mod = xenapi_module
        try:
            self.session = xenapi_module.xapi_local()
            self.session.xenapi.login_with_password("root", "", "", "rbdsr")
        except Exception as e:  # XenAPI raises Failure or socket errors
            raise XapiError("cannot open a local XAPI session (%s)" % _failure_code(e))
        self.x = self.session.xenapi

    def close(self):
        try:
            self.x.session.logout()
        except Exception:  # logging out is best effort
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, what, fn, *args):
        try:
            return fn(*args)
        except self.mod.Failure as e:
            raise XapiError("XAPI refused %s (%s)" % (what, _failure_code(e)))

    def find_sr(self, ident):
        """SR ref for a uuid or a name-label (which must name exactly one SR)."""
        if UUID_RE.match(ident or ""):
            try:
                return self.x.SR.get_by_uuid(ident)
            except self.mod.Failure:
                raise NotFoundError("no SR with uuid %s in this pool" % ident)
        refs = self._call("looking up SR %r" % ident, self.x.SR.get_by_name_label, ident)
        if not refs:
            raise NotFoundError("no SR named %r in this pool (give its uuid or name-label)" % ident)
        if len(refs) > 1:
            uuids = sorted(self._call("reading SRs", self.x.SR.get_uuid, r) for r in refs)
            raise ConfigError("%d SRs are named %r: give the uuid (%s)" % (len(refs), ident, ", ".join(uuids)))
        return refs[0]

    def read_secret(self, uuid):
        ref = self.x.secret.get_by_uuid(uuid)
        return self.x.secret.get_value(ref)

    def sr_info(self, ident):
        """SRInfo of an RBD SR; ConfigError when the SR is not one."""
        ref = self.find_sr(ident)
        rec = self._call("reading the SR", self.x.SR.get_record, ref)
        uuid = rec["uuid"]
        if rec.get("type") != SR_TYPE:
            raise ConfigError("SR %s is of type %s, not an RBD SR (lvmoiscsi with %s)"
                              % (uuid, rec.get("type"), RULE))
        pbds = []
        dconf = None
        for pref in self._call("listing the SR's PBDs", self.x.SR.get_PBDs, ref):
            prec = self._call("reading a PBD", self.x.PBD.get_record, pref)
            href = prec.get("host")
            try:
                huuid = self.x.host.get_uuid(href)
                hname = self.x.host.get_name_label(href)
            except self.mod.Failure:
                huuid, hname = str(href), None
            pbds.append(HostPBD(pref, huuid, hname, bool(prec.get("currently_attached"))))
            if dconf is None:
                dconf = dict(prec.get("device_config") or {})
        if dconf is None:
            raise ConfigError("SR %s has no PBD: no device-config to reach its image" % uuid)
        # the pool master's PBD first: XAPI plugs a shared SR there before the others
        master = self.master_uuid()
        pbds.sort(key=lambda p: p.host_uuid != master)
        if not wants_rbd(dconf):
            raise ConfigError("SR %s is a plain iSCSI SR (port %s), not an RBD SR (%s)"
                              % (uuid, dconf.get("port"), RULE))
        cfg = TargetConfig.from_dconf(dconf, secret_reader=self.read_secret)
        if not cfg.image:
            raise ConfigError("SR %s has no SCSIid (image) in its device-config" % uuid)
        return SRInfo(ref, uuid, rec.get("name_label", ""), dconf, pbds, cfg)

    def master_uuid(self):
        """The pool master's host uuid (None when XAPI names no pool)."""
        for pref in self._call("reading the pool", self.x.pool.get_all):
            href = self._call("reading the pool master", self.x.pool.get_master, pref)
            return self._call("reading the pool master", self.x.host.get_uuid, href)
        return None

    def host_uuids(self):
        return sorted(self.x.host.get_uuid(h) for h in self.x.host.get_all())
