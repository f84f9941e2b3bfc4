"""lvm.conf text functions of lvm_helpers.lvmconf, with its ValueError (a
`types` setting it cannot edit safely) turned into an RBDError the CLI reports."""
from lvm_helpers import lvmconf as _impl

from rbdsr.errors import RBDError


def _wrap(fn):
    def call(text):
        try:
            return fn(text)
        except ValueError as e:
            raise RBDError(str(e))
    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


add_rbd_types = _wrap(_impl.add_rbd_types)
remove_rbd_types = _wrap(_impl.remove_rbd_types)
has_rbd_types = _wrap(_impl.has_rbd_types)
