"""`block-rbd`: attach / detach an RBD image for a Xen vbd, and manage claims.

    block-rbd add|remove                      (run by libxl; env XENBUS_PATH)
    block-rbd claims TARGET                   list the claims on an image
    block-rbd break-claim TARGET [--host H] [--dry-run]

Xen's conventions (tools/hotplug/Linux/block-common.sh): read `params` and
`mode` from the backend path; on success write `physical-device` (major:minor
in hex), `physical-device-path` and `hotplug-status = connected`; on failure
write `hotplug-error` and `hotplug-status = error`, log, exit 1 -- libxl shows
hotplug-error in `xl create`'s output.
"""
import os
import socket
import stat
import sys
import syslog
import time
import traceback

from rbdsr import krbd, sysfs
from rbdsr.errors import ConfigError, NotFoundError, RBDError
from rbdsr.hotplug import cephconf, claims, cluster
from rbdsr.hotplug.target import SYNTAX, parse_mode, parse_target
from rbdsr.hotplug.xenstore import Xenstore
from rbdsr.hostlock import HostLock
from rbdsr.secret import read_keyring

PROG = "block-rbd"
LOCK_PATH = "/run/block-rbd/lock"
# Nodes block-rbd adds to the backend directory (besides Xen's own).
NODE_FSID = "rbd-fsid"
NODE_CLAIM = "rbd-claim"

USAGE = """usage:
  block-rbd add|remove            Xen hotplug (libxl sets XENBUS_PATH)
  block-rbd claims TARGET         list the claims on an image
  block-rbd break-claim TARGET [--host HOST] [--dry-run]
                                  break stale claims: by default this host's claims whose vbd
                                  is gone; --host HOST breaks every claim of HOST (a dead host)

TARGET: %s
""" % SYNTAX

NO_LIBRBD = ("mode w/r needs python3-rados and python3-rbd (librbd) in dom0 for the cluster-wide claim "
             "that stops two hosts from writing the image at once: install them, or skip the claim "
             "at your own risk with claim=no in the target (or mode w!/r!)")


class Log(object):
    """syslog (daemon facility, ident block-rbd) and stderr. Callers never pass secrets."""

    def __init__(self, stderr=None):
        self.stderr = stderr if stderr is not None else sys.stderr
        syslog.openlog(PROG, syslog.LOG_PID, syslog.LOG_DAEMON)

    def _emit(self, prio, msg):
        try:
            syslog.syslog(prio, msg)
        except (OSError, ValueError):
            pass
        try:
            self.stderr.write("%s: %s\n" % (PROG, msg))
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    def info(self, msg):
        self._emit(syslog.LOG_INFO, msg)

    def warn(self, msg):
        self._emit(syslog.LOG_WARNING, msg)

    def error(self, msg):
        self._emit(syslog.LOG_ERR, msg)




# ---------------------------------------------------------------- helpers

def host_id(environ):
    """This host's name in claim cookies: $BLOCK_RBD_HOST_ID, else the host name."""
    hid = environ.get("BLOCK_RBD_HOST_ID") or socket.gethostname()
    return claims.check_host_id(hid)


def image_id_of(ref, fsid):
    return krbd.ImageId(fsid, ref.pool, ref.namespace, ref.image, ref.snap)


def find_keyring(target, conf):
    """Path of a keyring holding target.entity's key: keyring= (must work), else
    /etc/ceph/ceph.client.ID.keyring, ceph.conf's keyring, /etc/ceph/ceph.keyring, /etc/ceph/keyring."""
    if target.keyring:
        read_keyring(target.keyring, target.entity)  # clear error now if it does not hold the key
        return target.keyring
    candidates = [target.default_keyring()]
    for path in (conf.keyring or "").split(","):
        path = path.strip().replace("$cluster", "ceph").replace("$name", target.entity)
        path = path.replace("$id", target.cephx_id)
        if path:
            candidates.append(path)
    candidates += ["/etc/ceph/ceph.keyring", "/etc/ceph/keyring"]
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            read_keyring(path, target.entity)
        except ConfigError:
            continue
        return path
    raise ConfigError("no keyring with a key for %s: looked in %s; give keyring=PATH in the target"
                      % (target.entity, ", ".join(candidates)))


class Context(object):
    """What every command needs from a target: ceph.conf, monitors, keyring, key."""

    def __init__(self, target, need_key=True):
        self.target = target
        if target.conf_given and not os.path.exists(target.conf):
            raise ConfigError("conf=%s does not exist" % target.conf)
        self.conf = cephconf.read(target.conf, target.entity)
        self.monitors = target.monitors or self.conf.monitors()
        if not self.monitors:
            raise ConfigError("no Ceph monitors: set mon_host in %s or give mon=ADDR;ADDR in the target"
                              % target.conf)
        self.keyring = find_keyring(target, self.conf)
        self.key = read_keyring(self.keyring, target.entity) if need_key else None
        self.fsid = target.fsid or self.conf.fsid

    def connect(self):
        if not cluster.available():
            raise cluster.NoLibrbdError(NO_LIBRBD)
        # librados reads ceph.conf itself (v2 addresses included); mon= overrides it.
        conf = self.target.conf if os.path.exists(self.target.conf) else None
        c = cluster.Cluster(self.target.cephx_id, conf, self.keyring,
                            self.target.monitors or (None if conf else self.monitors), self.target.timeout)
        try:
            fsid = c.fsid()
            if self.fsid and fsid != self.fsid:
                raise ConfigError("the cluster at %s has fsid %s, not %s as configured"
                                  % (_mons(self.monitors), fsid, self.fsid))
            self.fsid = fsid
        except BaseException:
            c.close()
            raise
        return c


def _mons(monitors):
    return ",".join(("[%s]:%d" if ":" in h else "%s:%d") % (h, p) for h, p in monitors)


def _open_image(c, ref):
    ioctx = c.ioctx(ref.pool, ref.namespace)
    try:
        return ioctx, c.rbd.Image(ioctx, ref.image)
    except c.rbd.ImageNotFound:
        ioctx.close()
        raise NotFoundError("image %s does not exist" % ref.spec())
    except (c.rbd.Error, c.rados.Error) as e:
        ioctx.close()
        raise cluster.map_error(e, "opening image %s" % ref.spec())


def _close(ioctx, image):
    for obj in (image, ioctx):
        try:
            obj.close()
        except Exception:  # closing after an error: nothing more to do
            pass


def ensure_clone(c, target, log):
    """clone-from: create target.ref.image as a layering clone of the golden snapshot when missing."""
    ref, parent = target.ref, target.clone_from
    ioctx = c.ioctx(ref.pool, ref.namespace)
    try:
        try:
            c.rbd.Image(ioctx, ref.image, read_only=True).close()
            return False  # exists: never touched
        except c.rbd.ImageNotFound:
            pass
        except (c.rbd.Error, c.rados.Error) as e:
            raise cluster.map_error(e, "opening image %s" % ref.spec())
        pioctx = c.ioctx(parent.pool, parent.namespace)
        try:
            try:
                c.rbd.RBD().clone(pioctx, parent.image, parent.snap, ioctx, ref.image, features=1)
            except c.rbd.ImageExists:
                return False  # created concurrently by another host
            except c.rbd.ImageNotFound:
                raise NotFoundError("clone-from %s: the golden image or snapshot does not exist" % parent.spec())
            except c.rbd.InvalidArgument:
                raise RBDError("clone-from %s: Ceph refused the clone; with clone format 1 the snapshot "
                               "must be protected (rbd snap protect)" % parent.spec())
            except (c.rbd.Error, c.rados.Error) as e:
                raise cluster.map_error(e, "cloning %s to %s" % (parent.spec(), ref.spec()))
        finally:
            pioctx.close()
        log.info("created %s as a clone of %s" % (ref.spec(), parent.spec()))
        return True
    finally:
        ioctx.close()


def _devnum(path):
    st = os.stat(path)
    if not stat.S_ISBLK(st.st_mode):
        raise RBDError("%s is not a block device" % path)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def other_users(xs, backend, physical_device):
    """Other vbd backends on this host whose physical-device is ours (shared read-only maps)."""
    vbd_root = os.path.dirname(os.path.dirname(backend))
    out = []
    for dom in xs.list(vbd_root):
        for dev in xs.list(vbd_root + "/" + dom):
            path = "%s/%s/%s" % (vbd_root, dom, dev)
            if path != backend and xs.read(path + "/physical-device") == physical_device:
                out.append(path)
    return out


# ---------------------------------------------------------------- add / remove

def do_add(xs, backend, environ, log):
    params = xs.read(backend + "/params")
    if not params:
        raise ConfigError("no information about the target (%s/params is empty)" % backend)
    target = parse_target(params)
    mode = parse_mode(xs.read(backend + "/mode"))
    ref = target.ref
    if ref.is_snap and mode.write:
        raise ConfigError("%s is a snapshot, which is read-only: attach it with access=ro" % ref.spec())
    want_claim = mode.check and target.claim and not ref.is_snap
    ctx = Context(target)
    deadline = time.monotonic() + target.timeout
    cookie = claims.make_cookie(host_id(environ), backend) if want_claim else None
    claimed = False
    c = None
    if want_claim or target.clone_from:
        if not cluster.available():
            if want_claim:
                raise cluster.NoLibrbdError(NO_LIBRBD)
            raise cluster.NoLibrbdError("clone-from needs python3-rados and python3-rbd (librbd) in dom0")
        c = ctx.connect()
    try:
        if target.clone_from:
            ensure_clone(c, target, log)
        if want_claim:
            ioctx, image = _open_image(c, ref)
            try:
                claimed = claims.acquire(image, c.rbd, ref.spec(), mode.write, cookie)
            finally:
                _close(ioctx, image)
            log.info("claimed %s for %s (%s)" % (ref.spec(), "writing" if mode.write else "reading", cookie))
        image_id = image_id_of(ref, ctx.fsid)
        was_mapped = krbd.find_mapped(image_id) is not None
        try:
            mapped = krbd.map_image(image_id, ctx.monitors, target.cephx_id, ctx.key, read_only=not mode.write,
                                    timeout=max(5.0, deadline - time.monotonic()))
            major, minor = _devnum(mapped.dev_path)
            fsid = ctx.fsid or sysfs.read_attr(
                os.path.join(sysfs.devices_dir(), str(mapped.dev_id), "cluster_fsid"), "").strip().lower()
            nodes = [("physical-device", "%x:%x" % (major, minor)),
                     ("physical-device-path", mapped.dev_path)]
            if fsid:
                nodes.append((NODE_FSID, fsid))
            if cookie:
                nodes.append((NODE_CLAIM, cookie))
            nodes.append(("hotplug-status", "connected"))
            xs.write(*[(backend + "/" + name, value) for name, value in nodes])
        except BaseException:
            if not was_mapped:
                _quietly(log, "unmapping after the failed add", krbd.unmap, image_id, False, 30.0)
            raise
        log.info("%s: %s mapped %s as %s (%x:%x)" % (backend, ref.spec(), "read-write" if mode.write
                                                     else "read-only", mapped.dev_path, major, minor))
    except BaseException:
        if claimed:
            _quietly(log, "releasing the claim after the failed add", _release, c, ref, cookie)
        raise
    finally:
        if c is not None:
            c.close()


def _release(c, ref, cookie):
    ioctx, image = _open_image(c, ref)
    try:
        return claims.release(image, c.rbd, cookie, c.client_name())
    finally:
        _close(ioctx, image)


def _quietly(log, what, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # rollback: report, keep the first error
        log.warn("%s failed: %s" % (what, e))


def do_remove(xs, backend, environ, log):
    params = xs.read(backend + "/params")
    if not params:
        raise ConfigError("no information about the target (%s/params is empty)" % backend)
    target = parse_target(params)
    ref = target.ref
    cookie = xs.read(backend + "/" + NODE_CLAIM)
    fsid = xs.read(backend + "/" + NODE_FSID) or target.fsid
    if not fsid:
        fsid = cephconf.read(target.conf, target.entity).fsid
    image_id = image_id_of(ref, fsid)
    dev_id = krbd.find_mapped(image_id)
    if dev_id is None:
        log.info("%s: %s is not mapped" % (backend, ref.spec()))
    else:
        mm = sysfs.block_devnum(dev_id)
        users = other_users(xs, backend, "%x:%x" % mm) if mm else []
        if users:
            log.info("%s: rbd%d stays mapped, still used by %s" % (backend, dev_id, ", ".join(users)))
        else:
            krbd.unmap(image_id, timeout=target.timeout)
            log.info("%s: unmapped %s (rbd%d)" % (backend, ref.spec(), dev_id))
    if cookie:
        ctx = Context(target, need_key=False)
        with ctx.connect() as c:
            n = _release(c, ref, cookie)
        log.info("%s: released %d claim(s) on %s" % (backend, n, ref.spec()))


# ---------------------------------------------------------------- admin commands

def do_claims(target, out):
    ctx = Context(target, need_key=False)
    with ctx.connect() as c:
        ioctx, image = _open_image(c, target.ref)
        try:
            found = claims.list_claims(image)
        finally:
            _close(ioctx, image)
    if not found:
        out.write("%s: no claims\n" % target.ref.spec())
    for cl in found:
        out.write("%s: %s\n" % (target.ref.spec(), claims.describe(cl)))
    return 0


def do_break_claim(target, args, environ, out, log, xs=None):
    host, dry_run = None, False
    rest = list(args)
    while rest:
        a = rest.pop(0)
        if a == "--host" and rest:
            host = claims.check_host_id(rest.pop(0))
        elif a == "--dry-run":
            dry_run = True
        else:
            raise ConfigError("break-claim: unexpected argument %r\n%s" % (a, USAGE))
    me = host_id(environ)
    xs = xs or Xenstore()
    if host is None or host == me:
        # Our own claims: stale only when the vbd they name is gone from xenstore.
        def select(cl):
            return cl.host == me and not xs.exists(cl.vbd)
        what = "stale claims of this host (%s)" % me
    else:
        def select(cl):
            return cl.host == host
        what = "claims of host %s" % host
    ctx = Context(target, need_key=False)
    with ctx.connect() as c:
        ioctx, image = _open_image(c, target.ref)
        try:
            if dry_run:
                chosen = [cl for cl in claims.list_claims(image) if cl.host and select(cl)]
            else:
                chosen = claims.break_claims(image, c.rbd, select)
        finally:
            _close(ioctx, image)
    verb = "would break" if dry_run else "broke"
    if not chosen:
        out.write("%s: no %s\n" % (target.ref.spec(), what))
    for cl in chosen:
        out.write("%s: %s %s\n" % (target.ref.spec(), verb, claims.describe(cl)))
        if not dry_run:
            log.warn("broke the claim on %s of %s" % (target.ref.spec(), claims.describe(cl)))
    if chosen and host not in (None, me):
        out.write("make sure host %s is really down: an advisory claim does not stop its writes "
                  "(to fence it: ceph osd blocklist add <address>)\n" % host)
    return 0


# ---------------------------------------------------------------- entry point

def report_failure(xs, backend, log, message):
    """Xen's fatal(): hotplug-error + hotplug-status=error on the backend, log it."""
    log.error("%s: %s" % (backend, message))
    try:
        xs.write((backend + "/hotplug-error", message), (backend + "/hotplug-status", "error"))
    except RBDError as e:
        log.error("cannot report the error in xenstore: %s" % e)


def main(argv=None, environ=None, stdout=None, stderr=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    log = Log(stderr)
    if not argv or argv[0] in ("-h", "--help", "help"):
        (stdout if argv else log.stderr).write(USAGE)
        return 0 if argv else 2
    command = argv[0]
    if command in ("add", "remove"):
        backend = environ.get("XENBUS_PATH", "")
        if not backend.startswith("/"):
            log.error("%s: XENBUS_PATH is not set; this command is run by libxl" % command)
            return 1
        xs = Xenstore()
        try:
            with HostLock(environ.get("BLOCK_RBD_LOCK", LOCK_PATH), 120.0, "another block-rbd"):
                (do_add if command == "add" else do_remove)(xs, backend, environ, log)
            return 0
        except RBDError as e:
            report_failure(xs, backend, log, "%s failed: %s" % (command, e))
        except Exception:
            log.error("internal error:\n" + traceback.format_exc())
            report_failure(xs, backend, log, "%s failed: internal error in block-rbd (see syslog)" % command)
        return 1
    if command in ("claims", "break-claim"):
        if len(argv) < 2:
            log.error("%s needs a TARGET\n%s" % (command, USAGE))
            return 2
        try:
            target = parse_target(argv[1])
            if command == "claims":
                return do_claims(target, stdout)
            return do_break_claim(target, argv[2:], environ, stdout, log)
        except RBDError as e:
            log.error(str(e))
            return 1
    log.error("unknown command %r\n%s" % (command, USAGE))
    return 2
