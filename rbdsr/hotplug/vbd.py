"""block-rbd add / remove: what libxl runs for a vbd (Xen's hotplug job).

Xen's conventions (tools/hotplug/Linux/block-common.sh): read `params` and
`mode` from the backend path; on success write `physical-device` (major:minor
in hex), `physical-device-path` and `hotplug-status = connected`.
"""
import os
import stat
import time

from rbdsr import krbd, sysfs
from rbdsr.errors import ConfigError, RBDError
from rbdsr.hotplug import cephconf, claims, cluster
from rbdsr.hotplug.clone import ensure_clone
from rbdsr.hotplug.context import NO_LIBRBD, Context, _close, _open_image, host_id, image_id_of
from rbdsr.hotplug.target import parse_mode, parse_target

# Nodes block-rbd adds to the backend directory (besides Xen's own).
NODE_FSID = "rbd-fsid"
NODE_CLAIM = "rbd-claim"


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
                claimed = claims.acquire(image, c.rbd, ref, mode.write, cookie)
            finally:
                _close(ioctx, image)
            log.info("claimed %s for %s (%s)" % (ref.spec(), "writing" if mode.write else "reading", cookie))
        image_id = image_id_of(ref, ctx.fsid)
        was_mapped = krbd.find_mapped(image_id) is not None
        try:
            mapped = krbd.map_image(image_id, ctx.monitors, ctx.creds, read_only=not mode.write,
                                    timeout=max(5.0, deadline - time.monotonic()), log=log.warn)
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
        ctx = Context(target)
        with ctx.connect() as c:
            n = _release(c, ref, cookie)
        log.info("%s: released %d claim(s) on %s" % (backend, n, ref.spec()))
