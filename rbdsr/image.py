"""The identity of an RBD image, and its one spelling in messages.

`ImageId(fsid, pool, namespace, image, snap)` is what krbd compares field by
field with /sys/bus/rbd/devices/N; fsid None means "cluster not known yet",
namespace '' none, snap '-' the head. `spec()` spells any image the way the
rbd CLI does -- pool[/namespace]/image[@snap] -- for the driver, the backends,
krbd and block-rbd alike (block-rbd's own target syntax, POOL:IMAGE, is only
its input).
"""
import collections

HEAD = "-"  # the kernel's current_snap for the image head


def spec(pool, namespace, image, snap=HEAD):
    """pool[/namespace]/image[@snap]; with image '' just pool[/namespace]."""
    s = pool + ("/" + namespace if namespace else "")
    if image:
        s += "/" + image
        if snap and snap != HEAD:
            s += "@" + snap
    return s


class ImageId(collections.namedtuple("ImageId", "fsid pool namespace image snap")):
    """The exact identity of an image (or snapshot)."""

    __slots__ = ()

    def __new__(cls, fsid, pool, namespace, image, snap=HEAD):
        return super(ImageId, cls).__new__(cls, fsid.lower() if fsid else None, pool, namespace or "",
                                           image, snap or HEAD)

    @property
    def is_snap(self):
        return self.snap != HEAD

    def with_fsid(self, fsid):
        return ImageId(fsid, self.pool, self.namespace, self.image, self.snap)

    def spec(self):
        return spec(self.pool, self.namespace, self.image, self.snap)
