"""What every block-rbd command needs from a target: ceph.conf, monitors, the
cephx credentials (rbdsr.credentials), the cluster fsid, and a bounded
librados connection when claims or clone-from need one."""
import os
import socket

from rbdsr import credentials, monaddr
from rbdsr.errors import ConfigError, NotFoundError
from rbdsr.hotplug import cephconf, claims, cluster

NO_LIBRBD = ("mode w/r needs python3-rados and python3-rbd (librbd) in dom0 for the cluster-wide claim "
             "that stops two hosts from writing the image at once: install them, or skip the claim "
             "at your own risk with claim=no in the target (or mode w!/r!)")


def host_id(environ):
    """This host's name in claim cookies: $BLOCK_RBD_HOST_ID, else the host name."""
    hid = environ.get("BLOCK_RBD_HOST_ID") or socket.gethostname()
    return claims.check_host_id(hid)


def image_id_of(ref, fsid):
    return ref.with_fsid(fsid)


class Context(object):
    """What every command needs from a target: ceph.conf, monitors, credentials, fsid."""

    def __init__(self, target):
        self.target = target
        if target.conf_given and not os.path.exists(target.conf):
            raise ConfigError("conf=%s does not exist" % target.conf)
        self.conf = cephconf.read(target.conf, target.entity)
        self.monitors = target.monitors or self.conf.monitors()
        if not self.monitors:
            raise ConfigError("no Ceph monitors: set mon_host in %s or give mon=ADDR;ADDR in the target"
                              % target.conf)
        self.creds = credentials.find_keyring(target.cephx_id, target.keyring, self.conf.keyring)
        self.fsid = target.fsid or self.conf.fsid

    def connect(self):
        if not cluster.available():
            raise cluster.NoLibrbdError(NO_LIBRBD)
        # librados reads ceph.conf itself (v2 addresses included); mon= overrides it.
        conf = self.target.conf if os.path.exists(self.target.conf) else None
        c = cluster.Cluster(self.creds, conf, self.target.monitors or (None if conf else self.monitors),
                            self.target.timeout)
        try:
            fsid = c.fsid()
            if self.fsid and fsid != self.fsid:
                raise ConfigError("the cluster at %s has fsid %s, not %s as configured"
                                  % (monaddr.format_list(self.monitors), fsid, self.fsid))
            self.fsid = fsid
        except BaseException:
            c.close()
            raise
        return c


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


