"""Image administration backends behind one interface (base.Backend).

open_backend(cfg): the SSH backend when cfg.auth_mode == 'ssh', else librbd
(python3-rados/rbd in process). Imports are lazy so dom0 without the Ceph
bindings can still use the SSH backend.
"""
from rbdsr.errors import RBDError


def librbd_available():
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError:
        return False
    return True


def open_backend(cfg, creds=None):
    """A connected Backend for cfg (raises RBDError subclasses, never ImportError).
    SSH mode logs in to a monitor (the backend fetches the credentials itself);
    librbd connects with `creds` (rbdsr.credentials.resolve(cfg) when None)."""
    if cfg.auth_mode == "ssh":
        from rbdsr.backends.ssh import SSHBackend
        return SSHBackend(cfg)
    if creds is None:
        from rbdsr.credentials import resolve
        creds = resolve(cfg)
    if not librbd_available():
        raise RBDError("the Ceph python bindings (python3-rados, python3-rbd) are not installed;"
                       " install them or use auth=ssh")
    from rbdsr.backends.librbd import LibrbdBackend
    return LibrbdBackend(cfg, creds)
