"""Image administration in process with python3-rados / python3-rbd.

The key reaches librados through conf_set('key', ...) only: no keyring file,
no command line. client_mount_timeout, rados_mon_op_timeout and
rados_osd_op_timeout bound every call by cfg.timeout.
"""
import errno
import json
import struct

import rados
import rbd

from rbdsr.backends.base import (
    LAYERING, Backend, ImageInfo, feature_names, image_path, load_json, parent_spec, parse_capacity,
    parse_fsid, parse_mon_dump, parse_rbd_pools,
)
from rbdsr import files
from rbdsr.errors import AuthError, CephError, ConfigError, InUseError, NotFoundError, UnreachableError

CEPH_NOSNAP = 0xFFFFFFFFFFFFFFFE
# How many size queries list_images keeps in flight at once.
LIST_WINDOW = 256


def map_rados_error(e, what):
    """A rados/rbd exception -> the RBDError an admin can act on (no secret in it)."""
    code = getattr(e, "errno", None)
    code = abs(code) if isinstance(code, int) else None
    if isinstance(e, (rados.PermissionDeniedError, rados.PermissionError, rbd.PermissionError)) or \
            code in (errno.EACCES, errno.EPERM):
        return AuthError("Ceph refused %s: permission denied (wrong cephx id/key or missing caps)" % what)
    if isinstance(e, (rados.TimedOut, rados.InterruptedOrTimeoutError)) or code in (errno.ETIMEDOUT, errno.EINTR):
        return UnreachableError("Ceph did not answer %s in time" % what)
    if isinstance(e, (rados.ObjectNotFound, rbd.ImageNotFound)) or code == errno.ENOENT:
        return NotFoundError("%s: not found" % what)
    if isinstance(e, (rbd.ImageExists, rados.ObjectExists)) or code == errno.EEXIST:
        return CephError("%s: already exists" % what)
    return CephError("%s failed: %s (errno %s)" % (what, e.__class__.__name__, code))


def bounded_client_settings(timeout):
    """librados settings for a client that never waits longer than timeout
    seconds and never writes to stderr (the wizard's XML channel) or a log file."""
    t = str(int(max(1, round(timeout))))
    return {
        "client_mount_timeout": t,
        "rados_mon_op_timeout": t,
        "rados_osd_op_timeout": t,
        "log_to_stderr": "false",
        "err_to_stderr": "false",
        "log_file": "",
    }


class LibrbdBackend(Backend):
    name = "librbd"

    def __init__(self, cfg, creds):
        """creds: the operation's rbdsr.credentials.Credentials."""
        Backend.__init__(self, cfg)
        self.creds = creds
        self._cluster = None
        self._connect()

    def _connect(self):
        cfg = self.cfg
        if cfg.resolved is None:
            cfg.resolve()  # bounded DNS; librados then only sees IPs
        key = self.creds.key
        t = str(int(max(1, round(cfg.timeout))))
        conf = bounded_client_settings(cfg.timeout)
        conf["mon_host"] = cfg.mon_host()
        if cfg.ceph_conf:
            # librados opens it with a plain open(): a FIFO there would hang us
            files.check_regular(cfg.ceph_conf, "ceph_conf %s" % cfg.ceph_conf)
        try:
            if cfg.ceph_conf:
                cluster = rados.Rados(rados_id=self.creds.cephx_id, conffile=cfg.ceph_conf)
            else:
                cluster = rados.Rados(rados_id=self.creds.cephx_id)
            for k, v in sorted(conf.items()):
                cluster.conf_set(k, v)
            if key is not None:
                cluster.conf_set("key", key.reveal())
                cluster.conf_set("keyring", "/dev/null")  # no keyring file read behind our back
        except rados.Error as e:
            raise map_rados_error(e, "setting up the Ceph client")
        try:
            cluster.connect(timeout=int(t))
        except rados.Error as e:
            try:
                cluster.shutdown()
            except rados.Error:
                pass
            what = "connecting to monitor(s) %s as %s" % (cfg.mon_addrs(), self.creds.entity)
            if getattr(e, "errno", None) in (errno.EOPNOTSUPP, -errno.EOPNOTSUPP):
                # librados found no key at all and fell back to no auth
                raise AuthError("%s: no cephx key (give chappassword or keyring)" % what)
            raise map_rados_error(e, what)
        self._cluster = cluster

    def close(self):
        if self._cluster is not None:
            try:
                self._cluster.shutdown()
            finally:
                self._cluster = None

    # -- helpers ----------------------------------------------------------

    def _mon(self, what, **cmd):
        cmd["format"] = "json"
        try:
            ret, out, status = self._cluster.mon_command(json.dumps(cmd), b"")
        except rados.Error as e:
            raise map_rados_error(e, what)
        if ret < 0:
            detail = "".join(c if c.isprintable() else "?" for c in status or "")[:200]
            raise map_rados_error(rados.OSError("", errno=-ret), "%s (%s)" % (what, detail) if detail else what)
        return load_json(out.decode("utf-8", "replace"), what)

    def _ioctx(self, pool, namespace=""):
        self.check_names(pool, namespace)
        try:
            ioctx = self._cluster.open_ioctx(pool)
        except rados.ObjectNotFound:
            raise NotFoundError("pool %s does not exist" % pool)
        except rados.Error as e:
            raise map_rados_error(e, "opening pool %s" % pool)
        if namespace:
            ioctx.set_namespace(namespace)
        return ioctx

    def open_ioctx(self, pool, namespace=""):
        """An IoCtx on pool/namespace for callers that drive librbd themselves
        (the admin command); the caller closes it."""
        return self._ioctx(pool, namespace)

    def _image(self, ioctx, pool, namespace, name, read_only=True):
        self.check_names(pool, namespace, name)
        try:
            return rbd.Image(ioctx, name, read_only=read_only)
        except rbd.ImageNotFound:
            raise NotFoundError("image %s does not exist" % image_path(pool, namespace, name))
        except (rbd.Error, rados.Error) as e:
            raise map_rados_error(e, "opening image %s" % image_path(pool, namespace, name))

    # -- cluster ----------------------------------------------------------

    def fsid(self):
        return parse_fsid(self._mon("fsid", prefix="fsid"))

    def monitors(self):
        return parse_mon_dump(self._mon("mon dump", prefix="mon dump"))

    def list_pools(self):
        return parse_rbd_pools(self._mon("osd pool ls detail", prefix="osd pool ls", detail="detail"))

    def pool_capacity(self, pool):
        self.check_names(pool)
        df = self._mon("df", prefix="df")
        quota = self._mon("osd pool get-quota %s" % pool, prefix="osd pool get-quota", pool=pool)
        return parse_capacity(df, quota, pool)

    # -- images -----------------------------------------------------------

    def list_images(self, pool, namespace=""):
        """Names and sizes in one pass: one directory read, then every image's
        size fetched with the rbd class's get_size, all requests in flight together."""
        what = "listing images in %s" % image_path(pool, namespace, "").rstrip("/")
        ioctx = self._ioctx(pool, namespace)
        try:
            try:
                entries = [(e["name"], e["id"]) for e in rbd.RBD().list2(ioctx)]
            except (rbd.Error, rados.Error) as e:
                raise map_rados_error(e, what)
            sizes = {}
            failed = []
            arg = struct.pack("<Q", CEPH_NOSNAP)

            def done(name):
                def cb(completion, data):
                    rv = completion.get_return_value()
                    if rv >= 9 and data is not None and len(data) >= 9:
                        sizes[name] = struct.unpack("<Q", data[1:9])[0]
                    elif rv != -errno.ENOENT:  # ENOENT: removed while we listed
                        failed.append((name, rv))
                return cb

            for start in range(0, len(entries), LIST_WINDOW):
                pending = []
                for name, image_id in entries[start:start + LIST_WINDOW]:
                    if not image_id:  # format 1 image: no header object by id
                        failed.append((name, None))
                        continue
                    try:
                        pending.append(ioctx.aio_execute(
                            "rbd_header." + image_id, "rbd", "get_size", arg, length=64, oncomplete=done(name)))
                    except rados.Error as e:
                        raise map_rados_error(e, what)
                for completion in pending:
                    completion.wait_for_complete_and_cb()
            for name, rv in failed:
                if rv is not None and rv < 0 and abs(rv) in (errno.ETIMEDOUT, errno.EACCES, errno.EPERM):
                    raise map_rados_error(rados.OSError("", errno=-rv), what)
                # anything unusual: ask librbd the long way for that one image
                try:
                    with rbd.Image(ioctx, name, read_only=True) as img:
                        sizes[name] = img.size()
                except rbd.ImageNotFound:
                    continue
                except (rbd.Error, rados.Error) as e:
                    raise map_rados_error(e, what)
            return [ImageInfo(name, sizes[name]) for name, _ in sorted(entries) if name in sizes]
        finally:
            ioctx.close()

    def image_info(self, pool, namespace, name):
        def info(img):
            try:
                p = img.get_parent_image_spec()
                parent = parent_spec(p["pool_name"], p["pool_namespace"], p["image_name"], p["snap_name"])
            except rbd.ImageNotFound:
                parent = None
            return ImageInfo(name, img.size(), feature_names(img.features()), parent,
                             sorted(w["addr"] for w in img.watchers_list()))
        return self._with_image(pool, namespace, name, "reading image %s" % image_path(pool, namespace, name), info)

    def create_image(self, pool, namespace, name, size):
        self.check_names(pool, namespace, name)
        if not isinstance(size, int) or size <= 0:
            raise ConfigError("image size must be a positive number of bytes")
        what = "creating image %s" % image_path(pool, namespace, name)
        ioctx = self._ioctx(pool, namespace)
        try:
            rbd.RBD().create(ioctx, name, size, old_format=False, features=LAYERING)
        except (rbd.Error, rados.Error) as e:
            raise map_rados_error(e, what)
        finally:
            ioctx.close()

    def _resize(self, pool, namespace, name, size):
        self._with_image(pool, namespace, name, "growing image %s" % image_path(pool, namespace, name),
                         lambda img: img.resize(size, allow_shrink=False), read_only=False)

    def _remove(self, pool, namespace, name):
        self.check_names(pool, namespace, name)
        what = "removing image %s" % image_path(pool, namespace, name)
        ioctx = self._ioctx(pool, namespace)
        try:
            rbd.RBD().remove(ioctx, name)
        except (rbd.Error, rados.Error) as e:
            raise map_rados_error(e, what)
        finally:
            ioctx.close()

    def get_meta(self, pool, namespace, name, key):
        self.check_meta(key)
        def get(img):
            try:
                return img.metadata_get(key)
            except KeyError:
                return None
        return self._with_image(pool, namespace, name,
                                "reading metadata %s of %s" % (key, image_path(pool, namespace, name)), get)

    def set_meta(self, pool, namespace, name, key, value):
        self.check_meta(key, value)
        self._with_image(pool, namespace, name, "writing metadata %s of %s" % (key, image_path(pool, namespace, name)),
                         lambda img: img.metadata_set(key, value), read_only=False)

    def blocklist_add(self, addr, expire=None):
        from rbdsr.clientaddr import instance_addr
        addr = instance_addr(addr)
        args = {"blocklistop": "add", "addr": addr}
        if expire:
            args["expire"] = float(expire)
        what = "blocklisting %s" % addr
        for prefix, op in (("osd blocklist", "blocklistop"), ("osd blacklist", "blacklistop")):  # < Pacific
            cmd = dict(args, prefix=prefix)
            cmd[op] = cmd.pop("blocklistop")
            try:
                ret, _out, status = self._cluster.mon_command(json.dumps(cmd), b"")
            except rados.Error as e:
                raise map_rados_error(e, what)
            if ret == -errno.EINVAL and prefix == "osd blocklist":
                continue  # a monitor that only knows the old name
            if ret < 0:
                raise map_rados_error(rados.OSError("", errno=-ret), what)
            return

    def _with_image(self, pool, namespace, name, what, fn, read_only=True):
        ioctx = self._ioctx(pool, namespace)
        try:
            img = self._image(ioctx, pool, namespace, name, read_only=read_only)
            try:
                return fn(img)
            except (rbd.Error, rados.Error) as e:
                raise map_rados_error(e, what)
            finally:
                img.close()
        finally:
            ioctx.close()

    def written_extents(self, pool, namespace, name):
        out = []

        def cb(offset, length, exists):
            if exists:
                out.append((offset, length))
            return 0

        def diff(img):
            img.diff_iterate(0, img.size(), None, cb, include_parent=True, whole_object=True)
            return out

        return self._with_image(pool, namespace, name,
                                "listing written extents of %s" % image_path(pool, namespace, name), diff)

    def lockers(self, pool, namespace, name):
        def ls(img):
            got = img.list_lockers()
            return [tuple(x) for x in got["lockers"]] if got else []
        return self._with_image(pool, namespace, name, "listing locks of %s" % image_path(pool, namespace, name), ls)

    def _lock_add(self, pool, namespace, name, cookie):
        path = image_path(pool, namespace, name)

        def lock(img):
            try:
                img.lock_exclusive(cookie)
            except (rbd.ImageBusy, rbd.ImageExists):
                raise InUseError("image %s is locked by %s" % (path, _holders(img.list_lockers())))
        self._with_image(pool, namespace, name, "locking %s" % path, lock)

    def _lock_break(self, pool, namespace, name, locker, cookie):
        # librbd's break_lock also blocklists the locker: never do that to ourselves
        own = locker == "client.%d" % self._cluster.get_instance_id()
        self._with_image(pool, namespace, name, "unlocking %s" % image_path(pool, namespace, name),
                         lambda img: img.unlock(cookie) if own else img.break_lock(locker, cookie))


def _holders(got):
    lockers = got["lockers"] if got else []
    return ", ".join("%s (%s, %s)" % (c, cookie, a) for c, cookie, a in lockers) or "another client"
