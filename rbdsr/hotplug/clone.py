"""block-rbd's clone-from: create a vbd's image as a layering clone of a
golden snapshot when it does not exist yet (never touching one that does)."""
from rbdsr.errors import NotFoundError, RBDError
from rbdsr.hotplug import cluster


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
