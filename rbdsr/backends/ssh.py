"""Image administration by running the ceph / rbd CLIs on a monitor over SSH.

As the historic RBDSR did, a sudoer on the monitor runs `ceph`/`rbd ...
--format json`; unlike it, the host key is verified, every argument is quoted,
each command is bounded on both ends (`timeout` on the monitor, a deadline
here), and the only key ever fetched is a least-privilege cephx user's
(`profile rbd` on the pool, its caps checked first), kept in memory as a
Secret, never the admin key.
"""
import errno
import re

from rbdsr.backends.base import (
    Backend, ImageInfo, expect_list, field, image_path, load_json, parent_spec, parse_capacity, parse_fsid,
    parse_mon_dump, parse_rbd_pools,
)
from rbdsr.backends import caps
from rbdsr.backends.sshconn import SSHConnection
from rbdsr.credentials import Credentials
from rbdsr.errors import (AuthError, CephError, ConfigError, InUseError, NotFoundError, TimeoutError_,
                          UnreachableError)
from rbdsr.secret import Secret, contains_secret, is_cephx_key

_ERRNO_RE = re.compile(r"\((\d+)\)")


def _last_line(text):
    """The last non-empty stderr line, trimmed and without secrets, for messages."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    if contains_secret(line):
        return "<output withheld>"
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line[:300]


class SSHBackend(Backend):
    name = "ssh"

    def __init__(self, cfg):
        Backend.__init__(self, cfg)
        self._conn = SSHConnection(
            cfg.ssh_host, cfg.ssh_port, cfg.ssh_user, cfg.ssh_password, cfg.timeout,
            host_key_fp=cfg.ssh_host_key, known_hosts=cfg.ssh_known_hosts)

    def close(self):
        self._conn.close()

    # -- running the CLIs -------------------------------------------------

    def _run(self, tool, args, what):
        t = int(max(1, round(self.cfg.timeout)))
        argv = ["timeout", str(t)]
        if self.cfg.ssh_sudo:
            argv += ["sudo", "-n"]
        argv += [tool] + list(args)
        if tool == "ceph":
            argv += ["--connect-timeout", str(t)]
        res = self._conn.run(argv, timeout=self.cfg.timeout + 5)
        if res.rc != 0:
            raise self._error(tool, res, what)
        return res.out

    def _error(self, tool, res, what):
        detail = _last_line(res.err)
        rc = res.rc
        if rc == 124:
            return UnreachableError("%s: %s on %s did not answer within %ss" % (what, tool, self._conn.where,
                                                                                self.cfg.timeout))
        if rc == 127 or "command not found" in res.err:
            return CephError("%s: the %s CLI is not installed on %s" % (what, tool, self._conn.where))
        if "sudo:" in res.err and ("password" in res.err or "not allowed" in res.err):
            return AuthError("%s: %s may not run %s with sudo -n (add a NOPASSWD sudoers rule)"
                             % (what, self._conn.where, tool))
        # ceph and rbd exit with the errno; "(N)" on the last line says it when they exit 1
        code = rc
        m = _ERRNO_RE.search(detail)
        if rc == 1 and m:
            code = int(m.group(1))
        if code == errno.ENOENT:
            return NotFoundError("%s: not found (%s)" % (what, detail))
        if code in (errno.EACCES, errno.EPERM):
            return AuthError("%s: permission denied (%s)" % (what, detail))
        if code == errno.ETIMEDOUT:
            return UnreachableError("%s: Ceph did not answer in time (%s)" % (what, detail))
        if code == errno.EEXIST:
            return CephError("%s: already exists (%s)" % (what, detail))
        return CephError("%s failed on %s (exit %s: %s)" % (what, self._conn.where, rc, detail))

    def _json(self, tool, args, what):
        return load_json(self._run(tool, list(args) + ["--format", "json"], what), what)

    def _ceph(self, what, *args):
        return self._json("ceph", args, what)

    def _spec(self, pool, namespace, name):
        self.check_names(pool, namespace, name)
        return image_path(pool, namespace, name)

    # -- cluster ----------------------------------------------------------

    def fsid(self):
        return parse_fsid(self._ceph("fsid", "fsid"))

    def monitors(self):
        return parse_mon_dump(self._ceph("mon dump", "mon", "dump"))

    def list_pools(self):
        return parse_rbd_pools(self._ceph("osd pool ls detail", "osd", "pool", "ls", "detail"))

    def pool_capacity(self, pool):
        self.check_names(pool)
        df = self._ceph("df", "df")
        quota = self._ceph("osd pool get-quota %s" % pool, "osd", "pool", "get-quota", pool)
        return parse_capacity(df, quota, pool)

    def fetch_credentials(self):
        """The least-privilege cephx user's Credentials (created first when
        create_cephx_user is set). Its caps are checked before its key is used:
        anything broader than RBDSR needs (caps.check_least_privilege) is refused."""
        cfg = self.cfg
        entity = cfg.entity
        if cfg.cephx_id == "admin":
            raise AuthError("refusing to fetch the admin key over SSH")
        osd_cap = caps.osd_cap(cfg.pool, cfg.namespace)
        what = "fetching cephx user %s" % entity
        # one CLI call in the usual case (the user exists); each costs seconds on a monitor
        try:
            obj = self._ceph(what, "auth", "get", entity)
        except NotFoundError:
            if not cfg.create_cephx_user:
                raise NotFoundError("cephx user %s does not exist: create it (ceph auth get-or-create %s mon"
                                    " '%s' osd '%s') or set create_cephx_user=true"
                                    % (entity, entity, caps.MON_CAP, osd_cap))
            self._ceph("creating cephx user %s" % entity, "auth", "get-or-create-key", entity,
                       "mon", caps.MON_CAP, "osd", osd_cap)
            obj = self._ceph(what, "auth", "get", entity)
        entries = expect_list(obj, what)
        if len(entries) != 1:
            raise CephError("unexpected answer from Ceph to %s" % what)
        granted = field(entries[0], "caps", dict, what)
        caps.check_least_privilege(entity, granted, cfg.pool, cfg.namespace)
        key = field(entries[0], "key", str, what)
        if not is_cephx_key(key):
            raise CephError("%s: the monitor returned something that is not a cephx key" % what)
        return Credentials(cfg.cephx_id, Secret(key), "fetched over SSH from %s" % self._conn.where)

    # -- images -----------------------------------------------------------

    def list_images(self, pool, namespace=""):
        self.check_names(pool, namespace)
        args = ["ls", "-l", "--pool", pool]
        if namespace:
            args += ["--namespace", namespace]
        what = "listing images in %s" % image_path(pool, namespace, "").rstrip("/")
        images = []
        for entry in expect_list(self._json("rbd", args, what), what):
            if isinstance(entry, dict) and "snapshot" in entry:
                continue
            images.append(ImageInfo(field(entry, "image", str, what), field(entry, "size", int, what)))
        return sorted(images, key=lambda i: i.name)

    def image_info(self, pool, namespace, name):
        spec = self._spec(pool, namespace, name)
        what = "reading image %s" % spec
        info = self._json("rbd", ["info", spec], what)
        status = self._json("rbd", ["status", spec], what)
        size = field(info, "size", int, what)
        features = sorted(field(info, "features", list, what))
        parent = None
        if "parent" in info:
            p = field(info, "parent", dict, what)
            parent = parent_spec(field(p, "pool", str, what), p.get("pool_namespace") or "",
                                 field(p, "image", str, what), field(p, "snapshot", str, what))
        watchers = sorted(field(w, "address", str, what)
                          for w in expect_list(field(status, "watchers", list, what), what))
        return ImageInfo(name, size, features, parent, watchers)

    def create_image(self, pool, namespace, name, size):
        spec = self._spec(pool, namespace, name)
        if not isinstance(size, int) or size <= 0:
            raise ConfigError("image size must be a positive number of bytes")
        self._run("rbd", ["create", "--size", "%dB" % size, "--image-format", "2",
                          "--image-feature", "layering", spec], "creating image %s" % spec)

    def _resize(self, pool, namespace, name, size):
        spec = self._spec(pool, namespace, name)
        self._run("rbd", ["resize", "--no-progress", "--size", "%dB" % size, spec], "growing image %s" % spec)

    def _remove(self, pool, namespace, name):
        spec = self._spec(pool, namespace, name)
        self._run("rbd", ["rm", "--no-progress", spec], "removing image %s" % spec)

    def get_meta(self, pool, namespace, name, key):
        spec = self._spec(pool, namespace, name)
        self.check_meta(key)
        what = "reading metadata of %s" % spec
        out = self._run("rbd", ["image-meta", "list", spec, "--format", "json"], what)
        if not out.strip():  # rbd prints nothing when the image has no metadata
            return None
        meta = load_json(out, what)
        if not isinstance(meta, dict):
            raise CephError("unexpected answer from Ceph to %s" % what)
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            raise CephError("unexpected answer from Ceph to %s" % what)
        return value

    def set_meta(self, pool, namespace, name, key, value):
        spec = self._spec(pool, namespace, name)
        self.check_meta(key, value)
        self._run("rbd", ["image-meta", "set", spec, key, value], "writing metadata %s of %s" % (key, spec))

    def written_extents(self, pool, namespace, name):
        spec = self._spec(pool, namespace, name)
        what = "listing written extents of %s" % spec
        out = []
        for e in expect_list(self._json("rbd", ["diff", "--whole-object", spec], what), what):
            if str(field(e, "exists", (str, bool), what)).lower() == "true":
                out.append((field(e, "offset", int, what), field(e, "length", int, what)))
        return out

    def lockers(self, pool, namespace, name):
        spec = self._spec(pool, namespace, name)
        what = "listing locks of %s" % spec
        out = self._run("rbd", ["lock", "ls", "--format", "json", spec], what)
        if not out.strip():
            return []
        got = load_json(out, what)
        # rbd prints a list of {id, locker, address}; older releases a dict keyed by id
        items = got if isinstance(got, list) else [dict(v, id=k) for k, v in got.items()] \
            if isinstance(got, dict) else expect_list(got, what)
        return [(field(e, "locker", str, what), field(e, "id", str, what), field(e, "address", str, what))
                for e in items]

    def blocklist_add(self, addr, expire=None):
        from rbdsr.clientaddr import instance_addr
        addr = instance_addr(addr)
        self._run("ceph", ["osd", "blocklist", "add", addr] + ([str(int(expire))] if expire else []),
                  "blocklisting %s" % addr)

    def _lock_add(self, pool, namespace, name, cookie):
        spec = self._spec(pool, namespace, name)
        try:
            self._run("rbd", ["lock", "add", spec, cookie], "locking %s" % spec)
        except CephError:
            held = self.lockers(pool, namespace, name)
            if not held:
                raise
            raise InUseError("image %s is locked by %s" % (spec, ", ".join("%s (%s, %s)" % h for h in held)))

    def _lock_break(self, pool, namespace, name, locker, cookie):
        spec = self._spec(pool, namespace, name)
        self._run("rbd", ["lock", "rm", spec, cookie, locker], "unlocking %s" % spec)


__all__ = ["SSHBackend", "TimeoutError_"]
