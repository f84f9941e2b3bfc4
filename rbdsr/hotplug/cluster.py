"""A bounded librados/librbd connection for block-rbd's claims and clone-from.

dom0 often lacks python3-rados / python3-rbd: `available()` says so without
raising, and `connect()` raises `NoLibrbdError` with a message that tells the
admin what to install or which mode skips the need.

The credentials (rbdsr.credentials.Credentials) reach librados through
conf_set("key") -- never a command line, and no keyring file is opened by
librados (keyring=/dev/null: a keyring path named in ceph.conf is not
read behind our back); client_mount_timeout and rados_{mon,osd}_op_timeout
bound every call.
"""
import os

from rbdsr import monaddr
from rbdsr.errors import RBDError


class NoLibrbdError(RBDError):
    """python3-rados / python3-rbd are not importable on this host."""

    key = "SMGeneral"


def available():
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError:
        return False
    return True


def _modules():
    try:
        import rados
        import rbd
    except ImportError:
        raise NoLibrbdError("python3-rados / python3-rbd (librbd) are not installed in dom0")
    return rados, rbd


def map_error(e, what):
    """A rados/rbd exception -> RBDError (same rules as the librbd backend)."""
    from rbdsr.backends.librbd import map_rados_error
    return map_rados_error(e, what)


class Cluster(object):
    """Connected rados handle; use as a context manager.

    creds: the Credentials to connect with; monitors: [(host, port)] or None
    (then ceph.conf's mon_host is used by librados).
    """

    def __init__(self, creds, conf_path, monitors=None, timeout=60.0):
        self.rados, self.rbd = _modules()
        cephx_id = self.cephx_id = creds.cephx_id
        self.timeout = timeout
        t = str(int(max(1, round(timeout))))
        # imported here: this module must load where the Ceph bindings are absent
        from rbdsr.backends.librbd import bounded_client_settings
        settings = bounded_client_settings(timeout)
        settings["keyring"] = "/dev/null"
        if creds.key is not None:
            settings["key"] = creds.key.reveal()
        if monitors:
            settings["mon_host"] = monaddr.format_list(monitors)
        rados = self.rados
        try:
            if conf_path and os.path.exists(conf_path):
                handle = rados.Rados(rados_id=cephx_id, conffile=conf_path)
            else:
                handle = rados.Rados(rados_id=cephx_id, conffile=None)  # None: read no file
            for k, v in sorted(settings.items()):
                handle.conf_set(k, v)
        except rados.Error as e:
            raise map_error(e, "setting up the Ceph client")
        # break_lock would blocklist the locker's address: that is the librados client of an
        # exited block-rbd run (never the kernel client doing the I/O), so it fences nothing --
        # and for our own live client it would cut our connection. (Option renamed in Pacific.)
        for option in ("rbd_blocklist_on_break_lock", "rbd_blacklist_on_break_lock"):
            try:
                handle.conf_set(option, "false")
                break
            except rados.Error:
                continue
        try:
            handle.connect(timeout=int(t))
        except rados.Error as e:
            try:
                handle.shutdown()
            except rados.Error:
                pass
            raise map_error(e, "connecting to Ceph as client.%s" % cephx_id)
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.handle is not None:
            try:
                self.handle.shutdown()
            finally:
                self.handle = None

    def client_name(self):
        """"client.<global id>" of this connection, as list_lockers names lockers."""
        try:
            return "client.%d" % self.handle.get_instance_id()
        except self.rados.Error as e:
            raise map_error(e, "asking Ceph for our client id")

    def fsid(self):
        try:
            return self.handle.get_fsid().strip().lower()
        except self.rados.Error as e:
            raise map_error(e, "asking Ceph for its fsid")

    def ioctx(self, pool, namespace=""):
        try:
            ioctx = self.handle.open_ioctx(pool)
        except self.rados.ObjectNotFound:
            from rbdsr.errors import NotFoundError
            raise NotFoundError("pool %s does not exist" % pool)
        except self.rados.Error as e:
            raise map_error(e, "opening pool %s" % pool)
        if namespace:
            ioctx.set_namespace(namespace)
        return ioctx
