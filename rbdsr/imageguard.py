"""May this image be formatted for a new SR? Ceph decides, not a look at a few
of the image's bytes, and only one sr_create in the whole cluster may be at it.

- unused: Ceph lists no extent of the image as ever written (objects that
  exist, whatever they read as) and no client other than ourselves watches it
  (has it mapped or open). Anything else -- also any doubt -- is a refusal.
- exclusive: sr_create holds the image's advisory lock (`rbd lock`, one holder
  cluster-wide, same for the librbd and the SSH backend) under a cookie naming
  its SR from before it writes the owner tag until it is done, and releases it
  on failure too. A lock our own SR left (a killed earlier attempt) is taken
  over; anyone else's is a refusal that says how to remove it.
"""
from rbdsr.backends.base import image_path
from rbdsr.errors import InUseError

CREATE_COOKIE_PREFIX = "rbdsr-create-"


def normalize_addr(addr):
    """'v1:1.2.3.4:0/123' and '1.2.3.4:0/123' are the same client instance."""
    addr = (addr or "").strip()
    for prefix in ("v1:", "v2:", "any:"):
        if addr.startswith(prefix):
            return addr[len(prefix):]
    return addr


def foreign_watchers(watchers, own_addrs=()):
    own = set(normalize_addr(a) for a in own_addrs if a)
    return [w for w in (watchers or []) if normalize_addr(w) not in own]


def check_unused(backend, cfg, own_addrs=()):
    """Raise InUseError unless the image is provably unused (see module doc)."""
    check_not_open(backend, cfg, own_addrs)
    check_never_written(backend, cfg)


def check_not_open(backend, cfg, own_addrs=()):
    """InUseError when a client other than `own_addrs` watches the image."""
    path = image_path(cfg.pool, cfg.namespace, cfg.image)
    info = backend.image_info(cfg.pool, cfg.namespace, cfg.image)
    others = foreign_watchers(info.watchers, own_addrs)
    if others:
        raise InUseError("refusing to format image %s: another client has it open (watchers: %s)"
                         % (path, ", ".join(others)))


def check_never_written(backend, cfg):
    """InUseError when Ceph lists any extent of the image as written."""
    path = image_path(cfg.pool, cfg.namespace, cfg.image)
    written = backend.written_extents(cfg.pool, cfg.namespace, cfg.image)
    if written:
        total = sum(length for _off, length in written)
        first = written[0][0]
        raise InUseError("refusing to format image %s: Ceph lists %d bytes of it as written (%d extents, "
                         "the first at offset %d); RBDSR only formats an image that was never written or "
                         "was discarded (rbd sparsify does not clear data: discard it, or choose another image)"
                         % (path, total, len(written), first))


class CreateClaim(object):
    """The cluster-wide exclusive right to format one image for one SR."""

    def __init__(self, backend, cfg, sr_uuid, log=None):
        self.backend = backend
        self.cfg = cfg
        self.cookie = CREATE_COOKIE_PREFIX + sr_uuid
        self.held = False
        self.error = None
        self._log = log or (lambda msg: None)

    def _args(self):
        return self.cfg.pool, self.cfg.namespace, self.cfg.image

    def acquire(self):
        path = image_path(*self._args())
        try:
            self.backend.lock_image(*(self._args() + (self.cookie,)))
        except InUseError:
            held = self.backend.lockers(*self._args())
            if held and all(c == self.cookie for _l, c, _a in held):
                # our own SR's earlier, killed attempt: take it over
                self.backend.unlock_image(*(self._args() + (self.cookie,)))
                self._log("took over the creation lock %s that an earlier attempt left on %s" % (self.cookie, path))
                self.backend.lock_image(*(self._args() + (self.cookie,)))
            else:
                raise InUseError("image %s is being formatted by another sr_create (or one that died): lock %s; "
                                 "if no sr_create is running, remove it with: rbd lock rm %s %s %s"
                                 % (path, ", ".join("%s by %s at %s" % (c, lk, a) for lk, c, a in held) or "?",
                                    path, held[0][1] if held else "<id>", held[0][0] if held else "<locker>"))
        self.held = True

    def release(self):
        if not self.held:
            return
        try:
            self.backend.unlock_image(*(self._args() + (self.cookie,)))
            self.held = False
        except Exception as e:  # noqa: BLE001 - the next attempt of this SR takes it over
            self.error = e
            self._log("could not release the creation lock %s on %s: %s"
                      % (self.cookie, image_path(*self._args()), e))
