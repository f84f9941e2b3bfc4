"""Shared pieces of the krbd / LVM VM tests: a Ceph cluster in the guest,
librbd access to check what reached Ceph, and cleanup of mappings."""
import os
import sys
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20


def _get(obj, name):
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def remove_image(ioctx, name, timeout=60):
    """Remove an image (gone already is fine), retrying while a watcher that is going
    away (an unmap, a closing client) still holds it."""
    import rbd

    deadline = time.monotonic() + timeout
    while True:
        try:
            rbd.RBD().remove(ioctx, name)
            return
        except rbd.ImageNotFound:
            return
        except rbd.ImageBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def start_cluster(request, tmp_path_factory, objectstore="memstore"):
    """The shared `ceph_cluster` / `bluestore_cluster` fixture when the
    tests.cephfixture plugin is loaded, else a cluster of our own from
    tools/cephlab. Returns the description dict (dir, conf, admin_keyring,
    mon_addr, pool, fsid)."""
    try:
        c = request.getfixturevalue("ceph_cluster" if objectstore == "memstore" else "bluestore_cluster")
        return c.info if hasattr(c, "info") else c
    except pytest.FixtureLookupError:
        pass
    sys.path.insert(0, os.path.join(REPO, "tools"))
    from cephlab import cluster as cephlab
    if objectstore == "bluestore":
        # bluestore opens its block file with O_DIRECT, which the guest's tmpfs /tmp lacks.
        d = os.path.join(tempfile.mkdtemp(prefix="rbdsr-bluestore-", dir="/var/tmp"), "c")
    else:
        d = str(tmp_path_factory.mktemp("ceph-" + objectstore) / "c")
    state = cephlab.start(d, objectstore=objectstore, timeout=300)
    request.addfinalizer(lambda: cephlab.stop(d))
    return state


class Ceph(object):
    """librados/librbd access for checks (create images, read at offsets)."""

    def __init__(self, cluster):
        import rados

        from rbdsr.secret import read_keyring

        self.cluster = cluster
        self.pool = _get(cluster, "pool")
        self.mon_addr = _get(cluster, "mon_addr")
        self.keyring = _get(cluster, "admin_keyring")
        self.key = read_keyring(self.keyring, "client.admin")
        from rbdsr.credentials import Credentials
        self.creds = Credentials("admin", self.key, "the test cluster's admin keyring")
        self.rados = rados.Rados(conffile=_get(cluster, "conf"), conf={"keyring": self.keyring},
                                 rados_id="admin")
        self.rados.connect(timeout=30)
        self.fsid = self.rados.get_fsid()
        self._ioctx = {}

    def ioctx(self, pool=None, namespace=""):
        k = (pool or self.pool, namespace)
        if k not in self._ioctx:
            io = self.rados.open_ioctx(k[0])
            if namespace:
                io.set_namespace(namespace)
            self._ioctx[k] = io
        return self._ioctx[k]

    def ensure_pool(self, pool):
        import rbd

        if not self.rados.pool_exists(pool):
            self.rados.create_pool(pool)
            io = self.rados.open_ioctx(pool)
            try:
                io.application_enable("rbd")
                rbd.RBD().pool_init(io, True)
            finally:
                io.close()

    def ensure_namespace(self, pool, namespace):
        import rbd

        io = self.ioctx(pool)
        if not rbd.RBD().namespace_exists(io, namespace):
            rbd.RBD().namespace_create(io, namespace)

    def create(self, name, size=64 * MIB, pool=None, namespace=""):
        import rbd

        rbd.RBD().create(self.ioctx(pool, namespace), name, size, old_format=False,
                         features=rbd.RBD_FEATURE_LAYERING)

    def remove(self, name, pool=None, namespace=""):
        remove_image(self.ioctx(pool, namespace), name)

    def read(self, name, offset, length, pool=None, namespace=""):
        import rbd

        with rbd.Image(self.ioctx(pool, namespace), name, read_only=True) as img:
            return img.read(offset, length)

    def write(self, name, offset, data, pool=None, namespace=""):
        import rbd

        with rbd.Image(self.ioctx(pool, namespace), name) as img:
            img.write(data, offset)
            img.flush()

    def resize(self, name, size, pool=None, namespace=""):
        import rbd

        with rbd.Image(self.ioctx(pool, namespace), name) as img:
            img.resize(size)

    def image_id(self, name, pool=None, namespace="", snap="-"):
        from rbdsr import krbd

        return krbd.ImageId(self.fsid, pool or self.pool, namespace, name, snap)

    def close(self):
        for io in self._ioctx.values():
            io.close()
        self.rados.shutdown()


def unmap_all():
    """Force-unmap every rbd device (test cleanup)."""
    base = "/sys/bus/rbd/devices"
    for n in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open("/sys/bus/rbd/remove_single_major", "w") as f:
                f.write("%s force" % n)
        except OSError:
            pass


def pwrite_direct(path, offset, data):
    """Write `data` (a multiple of 4 KiB) at `offset` with O_DIRECT and fsync."""
    import mmap

    buf = mmap.mmap(-1, len(data))
    buf.write(data)
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        assert os.write(fd, buf) == len(data)
        os.fsync(fd)
    finally:
        os.close(fd)
        buf.close()


def pread_direct(path, offset, length):
    import mmap

    buf = mmap.mmap(-1, length)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        n = os.readv(fd, [buf])
        return bytes(buf[:n])
    finally:
        os.close(fd)
        buf.close()


def pattern(tag, size):
    unit = ("%s-%s\n" % (tag, os.urandom(8).hex())).encode()
    return (unit * (size // len(unit) + 1))[:size]
