"""The admin operations on an SR's image, with librbd (python3-rbd).

Every operation checks before it changes anything: the image is this SR's
(its rbdsr.sr_uuid tag, when set, names the SR), a snapshot is this SR's (its
name carries the SR uuid), files are whole exports in the right order. What
an operation creates and cannot finish it removes again."""
import contextlib
import copy
import errno
import sys

import rados
import rbd

from rbdsr.admin import names, rbdformat, sidecar
from rbdsr.admin.progress import Progress
from rbdsr.backends import open_backend
from rbdsr.backends.base import LAYERING, OWNER_META_KEY, image_path
from rbdsr.backends.librbd import map_rados_error
from rbdsr.config import validate_name
from rbdsr.credentials import resolve
from rbdsr.errors import ConfigError, InUseError, NotFoundError, RBDError

CLONE_OF_META_KEY = "rbdsr.clone_of"
IMPORT_META_KEY = "rbdsr.import"
ZERO = bytes(rbdformat.CHUNK)


def connect(cfg):
    """A librbd backend for cfg, with the SR's credentials resolved as the driver
    resolves them (rbdsr.credentials): with auth=ssh the least-privilege cephx key
    is fetched over SSH once (kept in memory) and librbd uses it. The backend's
    `creds` serve the kernel map too."""
    if cfg.auth_mode == "ssh":
        with open_backend(cfg) as ssh:
            creds = resolve(cfg, ssh.fetch_credentials)
        cfg = copy.copy(cfg)
        cfg.auth_mode, cfg.cephx_id = "cephx", creds.cephx_id
        return open_backend(cfg, creds)
    return open_backend(cfg, resolve(cfg))


def _rbd(what, fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except (rbd.Error, rados.Error) as e:
        raise map_rados_error(e, what)


class SnapInfo(object):
    __slots__ = ("name", "id", "size", "protected", "children", "when")

    def __init__(self, name, snap_id, size, protected, children, when):
        self.name = name
        self.id = snap_id
        self.size = size
        self.protected = protected
        self.children = children
        self.when = when


class SRImage(object):
    """The RBD image of one SR (cfg.pool / namespace / image) and its snapshots."""

    def __init__(self, backend, cfg, sr_uuid, quiet=False):
        self.backend = backend
        self.cfg = cfg
        self.sr_uuid = sr_uuid
        self.quiet = quiet
        self.pool, self.ns, self.image = cfg.pool, cfg.namespace, cfg.image
        self.path = image_path(self.pool, self.ns, self.image)

    # -- helpers ------------------------------------------------------------
    def ioctx(self):
        return self.backend.open_ioctx(self.pool, self.ns)

    @contextlib.contextmanager
    def session(self):
        """An IoCtx on the SR's pool/namespace, closed after use."""
        ioctx = self.ioctx()
        try:
            yield ioctx
        finally:
            ioctx.close()

    @contextlib.contextmanager
    def opened(self, ioctx, **kw):
        """The image (or kw name=) opened with _open, closed after use."""
        img = self._open(ioctx, **kw)
        try:
            yield img
        finally:
            img.close()

    def _open(self, ioctx, snapshot=None, read_only=True, name=None):
        name = name or self.image
        try:
            return rbd.Image(ioctx, name, snapshot=snapshot, read_only=read_only)
        except rbd.ImageNotFound:
            if snapshot:
                raise NotFoundError("snapshot %s of image %s does not exist"
                                    % (snapshot, image_path(self.pool, self.ns, name)))
            raise NotFoundError("image %s does not exist" % image_path(self.pool, self.ns, name))
        except (rbd.Error, rados.Error) as e:
            raise map_rados_error(e, "opening image %s" % image_path(self.pool, self.ns, name))

    def check_owner(self):
        """The image exists and is not tagged as another SR's."""
        tag = self.backend.get_meta(self.pool, self.ns, self.image, OWNER_META_KEY)
        if tag is not None and tag != self.sr_uuid:
            raise InUseError("image %s belongs to SR %s, not to SR %s: refusing" % (self.path, tag, self.sr_uuid))

    def _ours(self, name, what="snapshot"):
        p = names.parse(name)
        if p is None:
            raise ConfigError("%s %r is not an rbdsr snapshot name (rbdsr-<sr uuid>-<UTC time>[-label];"
                              " see `rbdsr snapshots SR`)" % (what, name))
        if p.sr_uuid != self.sr_uuid:
            raise ConfigError("%s %s is a snapshot of SR %s, not of SR %s" % (what, name, p.sr_uuid, self.sr_uuid))
        return name

    def snapshots(self, ioctx=None, all_names=False):
        """This SR's snapshots (all of the image's with all_names), oldest first."""
        if ioctx is None:
            with self.session() as ioctx:
                return self.snapshots(ioctx, all_names)
        out = []
        with self.opened(ioctx) as img:
            for s in _rbd("listing snapshots of %s" % self.path, lambda: list(img.list_snaps())):
                if not all_names and not names.belongs(s["name"], self.sr_uuid):
                    continue
                protected = _rbd("reading snapshot %s" % s["name"], img.is_protected_snap, s["name"])
                children = []
                if protected:
                    img.set_snap(s["name"])
                    try:
                        children = sorted(image_path(c["pool"], c["pool_namespace"], c["image"])
                                          for c in _rbd("listing clones", lambda: list(img.list_children2())))
                    finally:
                        img.set_snap(None)
                try:
                    when = img.get_snap_timestamp(s["id"])
                except (rbd.Error, AttributeError):
                    when = None
                out.append(SnapInfo(s["name"], s["id"], s["size"], protected, children, when))
        return sorted(out, key=lambda s: s.id)

    def _snap(self, name, ioctx=None):
        self._ours(name)
        for s in self.snapshots(ioctx):
            if s.name == name:
                return s
        raise NotFoundError("SR %s has no snapshot %s (image %s)" % (self.sr_uuid, name, self.path))

    # -- snapshots ----------------------------------------------------------
    def snapshot(self, label=None, keep=None):
        """Create a snapshot now; then apply retention. Returns (name, removed names)."""
        if keep is not None and keep < 1:
            raise ConfigError("--keep must be at least 1")
        name = names.make(self.sr_uuid, label)
        self.check_owner()
        with self.session() as ioctx:
            with self.opened(ioctx, read_only=False) as img:
                try:
                    img.create_snap(name)
                except rbd.ImageExists:
                    raise ConfigError("snapshot %s already exists (one per second and label): wait a second"
                                      " or give another --name" % name)
                except (rbd.Error, rados.Error) as e:
                    raise map_rados_error(e, "creating snapshot %s of %s" % (name, self.path))
            removed = self.retain(keep, ioctx) if keep else []
        return name, removed

    def retain(self, keep, ioctx=None):
        """Remove this SR's oldest snapshots beyond the newest `keep`; a snapshot
        with clones is kept (and said). Returns the removed names."""
        if keep < 1:
            raise ConfigError("--keep must be at least 1")
        if ioctx is None:
            self.check_owner()
            with self.session() as ioctx:
                return self.retain(keep, ioctx)
        snaps = self.snapshots(ioctx)
        removed = []
        for s in snaps[:max(0, len(snaps) - keep)]:
            if s.children:
                self.say("keeping %s: it has clones (%s)" % (s.name, ", ".join(s.children)))
                continue
            self._remove(s, ioctx)
            removed.append(s.name)
        return removed

    def remove_snapshot(self, name):
        self.check_owner()
        with self.session() as ioctx:
            s = self._snap(name, ioctx)
            if s.children:
                raise InUseError("snapshot %s has clones (%s): flatten or remove them first"
                                 % (name, ", ".join(s.children)))
            self._remove(s, ioctx)

    def _remove(self, s, ioctx):
        with self.opened(ioctx, read_only=False) as img:
            if s.protected:
                _rbd("unprotecting snapshot %s" % s.name, img.unprotect_snap, s.name)
            _rbd("removing snapshot %s" % s.name, img.remove_snap, s.name)

    def say(self, msg):
        if not self.quiet:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    # -- export -------------------------------------------------------------
    def export(self, snap, path, since=None, force=False):
        """Full (`rbd import --export-format 2`) or incremental (`rbd import-diff`)
        export of snapshot `snap` to path, with path.sha256 beside it.
        Returns (bytes written, sha256)."""
        self.check_owner()
        with self.session() as ioctx:
            to = self._snap(snap, ioctx)
            if since is not None and self._snap(since, ioctx).id >= to.id:
                raise ConfigError("--since %s is not older than %s: an incremental export goes from an"
                                  " older snapshot to a newer one" % (since, snap))
            with self.opened(ioctx, snapshot=snap) as img:
                return self._export(img, snap, path, since, force)

    def _export(self, img, snap, path, since, force):
        size = img.size()
        extents = []
        _rbd("listing the allocated extents of %s@%s" % (self.path, snap), img.diff_iterate,
             0, size, since, lambda off, length, exists: extents.append((off, length, exists)))
        prog = Progress("export %s %s" % ("incremental" if since else "full", snap),
                        sum(e[1] for e in extents), quiet=self.quiet)
        with sidecar.ExportFile(path, force=force) as out:
            if since is None:
                rbdformat.write_image_header(out, img.stat()["order"], LAYERING, img.stripe_unit(),
                                             img.stripe_count())
            w = rbdformat.DiffWriter(out, 1 if since else 2)
            w.start(since, snap, size)
            done = 0
            for off, length, exists in extents:
                for pos in range(off, off + length, rbdformat.CHUNK):
                    n = min(rbdformat.CHUNK, off + length - pos)
                    data = _rbd("reading %s@%s" % (self.path, snap), img.read, pos, n) if exists else None
                    if data is not None and data != ZERO[:n]:
                        w.data(pos, data)
                    elif since is not None:  # a full export starts from zeros: nothing to say
                        w.zero(pos, n)
                    done += n
                    prog.update(done)
            w.end()
        prog.done("%s (%d bytes), %s%s" % (path, out.count, path, sidecar.SUFFIX))
        return out.count, out.hexdigest()

    # -- restore / clone / flatten ------------------------------------------
    def restore(self, snap, sr_info):
        """Roll the image back to snap: only when no host has the SR attached
        (XAPI) and nobody has the image open (watchers)."""
        self.check_owner()
        attached = sr_info.attached_hosts()
        if attached:
            raise InUseError("SR %s is attached on %s: detach it on every host (xe pbd-unplug) before restore;"
                             " nothing was changed" % (self.sr_uuid, ", ".join(sorted(attached))))
        watchers = self.backend.image_info(self.pool, self.ns, self.image).watchers
        if watchers:
            raise InUseError("image %s is still open by %s (a host that maps it, or another client): unmap it"
                             " there before restore; nothing was changed" % (self.path, ", ".join(watchers)))
        with self.session() as ioctx:
            self._snap(snap, ioctx)
            with self.opened(ioctx, read_only=False) as img:
                prog = Progress("restore %s" % snap, 100, quiet=self.quiet)
                _rbd("rolling %s back to %s" % (self.path, snap), img.rollback_to_snap, snap)
                prog.done()

    def clone(self, snap, new_image, new_sr_uuid):
        """Protect snap (if needed) and make new_image a layering clone of it,
        tagged as SR new_sr_uuid's. Returns True when this call protected snap."""
        validate_name("image", new_image, "--image")
        self.check_owner()
        with self.session() as ioctx:
            s = self._snap(snap, ioctx)
            if _exists(ioctx, new_image):
                raise ConfigError("image %s already exists: choose another --image"
                                  % image_path(self.pool, self.ns, new_image))
            protected_now = False
            if not s.protected:
                with self.opened(ioctx, read_only=False) as img:
                    _rbd("protecting snapshot %s" % snap, img.protect_snap, snap)
                    protected_now = True
            try:
                _rbd("cloning %s@%s" % (self.path, snap), rbd.RBD().clone, ioctx, self.image, snap, ioctx,
                     new_image, features=LAYERING)
                with self.opened(ioctx, read_only=False, name=new_image) as child:
                    _rbd("tagging the clone", child.metadata_set, OWNER_META_KEY, new_sr_uuid)
                    _rbd("tagging the clone", child.metadata_set, CLONE_OF_META_KEY,
                         "%s@%s" % (self.sr_uuid, snap))
            except BaseException:
                self._drop_clone(ioctx, new_image, snap if protected_now else None)
                raise
            return protected_now

    def drop_clone(self, new_image, unprotect_snap=None):
        with self.session() as ioctx:
            self._drop_clone(ioctx, new_image, unprotect_snap)

    def _drop_clone(self, ioctx, new_image, unprotect_snap):
        """Undo clone(): remove the clone we made and unprotect what we protected."""
        try:
            if _exists(ioctx, new_image):
                rbd.RBD().remove(ioctx, new_image)
            if unprotect_snap:
                with self.opened(ioctx, read_only=False) as img:
                    img.unprotect_snap(unprotect_snap)
        except (rbd.Error, rados.Error, RBDError) as e:
            self.say("warning: could not undo the clone %s completely (%s): remove it with"
                     " `rbd rm %s`" % (new_image, e, image_path(self.pool, self.ns, new_image)))

    def flatten(self):
        """Copy the parent's data into this (clone) image so it stands alone."""
        self.check_owner()
        with self.session() as ioctx:
            with self.opened(ioctx, read_only=False) as img:
                try:
                    parent = img.get_parent_image_spec()
                except rbd.ImageNotFound:
                    raise ConfigError("image %s is not a clone: nothing to flatten" % self.path)
                prog = Progress("flatten %s" % self.path, 1000, quiet=self.quiet)
                try:
                    img.flatten(on_progress=lambda done, total: prog.update(done * 1000 // max(1, total)))
                except TypeError:  # older bindings: no progress callback
                    _rbd("flattening %s" % self.path, img.flatten)
                except (rbd.Error, rados.Error) as e:
                    raise map_rados_error(e, "flattening %s" % self.path)
                prog.done()
                return "%s@%s" % (parent["image_name"], parent["snap_name"])


def _exists(ioctx, name):
    try:
        rbd.Image(ioctx, name, read_only=True).close()
        return True
    except rbd.ImageNotFound:
        return False
    except (rbd.Error, rados.Error) as e:
        raise map_rados_error(e, "looking for image %s" % name)


# -- import -----------------------------------------------------------------

class _Checked(object):
    __slots__ = ("path", "kind", "meta", "diffs", "size")

    def __init__(self, path, kind, meta, diffs, size):
        self.path, self.kind, self.meta, self.diffs, self.size = path, kind, meta, diffs, size


def check_chain(paths, verify=True):
    """Read every file to its end: valid stream, checksum (FILE.sha256) and
    order. Returns [_Checked]; FormatError / ChecksumError say which file and why."""
    if not paths:
        raise ConfigError("no file to import")
    checked = []
    last_to = None
    for i, path in enumerate(paths):
        want = sidecar.expected(path)
        if want is None and verify:
            raise sidecar.ChecksumError("%s has no checksum file %s%s (give --no-verify to import it anyway)"
                                        % (path, path, sidecar.SUFFIX))
        try:
            with open(path, "rb") as raw:
                f = sidecar.HashingFile(raw)
                kind, meta, diffs = rbdformat.read_stream(f, path)
        except (IOError, OSError) as e:
            raise ConfigError("cannot read %s: %s" % (path, e.strerror or e))
        if want is not None and f.hexdigest() != want:
            raise sidecar.ChecksumError("%s does not match its checksum in %s%s: the file is damaged"
                                        % (path, path, sidecar.SUFFIX))
        if i == 0 and kind != "full":
            raise rbdformat.FormatError("%s is an incremental export: the chain must start with a full export"
                                        " (rbdsr export SR --snapshot N FILE)" % path)
        if i > 0 and kind != "diff":
            raise rbdformat.FormatError("%s is a full export: only the first file of a chain may be one" % path)
        for d in diffs:
            if d.from_snap != last_to:
                if last_to is None:
                    raise rbdformat.FormatError("%s starts from snapshot %s but nothing before it ends there"
                                                % (path, d.from_snap))
                raise rbdformat.FormatError(
                    "%s starts from snapshot %s, but the chain so far ends at %s: the files are out of order"
                    " or one is missing" % (path, d.from_snap or "(nothing: a full export)", last_to))
            if d.to_snap is None and (i < len(paths) - 1 or d is not diffs[-1]):
                # `rbd export` may end at the image head: only the very end of a chain may
                raise rbdformat.FormatError("%s has a diff that ends at no snapshot: nothing can follow it" % path)
            last_to = d.to_snap
        checked.append(_Checked(path, kind, meta, diffs, f.count))
    return checked


def import_chain(backend, pool, namespace, new_image, paths, verify=True, quiet=False):
    """Restore a chain (full export, then incrementals in order) into a new
    image. All files are checked first; a failure half-way removes the image."""
    validate_name("image", new_image, "--image")
    checked = check_chain(paths, verify)
    dest = image_path(pool, namespace, new_image)
    ioctx = backend.open_ioctx(pool, namespace)
    try:
        if _exists(ioctx, new_image):
            raise ConfigError("image %s already exists: import only makes new images" % dest)
        first = checked[0]
        _rbd("creating image %s" % dest, rbd.RBD().create, ioctx, new_image, first.diffs[0].size,
             old_format=False, features=LAYERING, order=first.meta.order)
        try:
            img = _rbd("opening %s" % dest, rbd.Image, ioctx, new_image)
            try:
                _rbd("tagging %s" % dest, img.metadata_set, IMPORT_META_KEY, "incomplete")
                total = sum(c.size for c in checked)
                prog = Progress("import into %s" % dest, total, quiet=quiet)
                base = [0]
                for c in checked:
                    _apply_file(img, c, prog, base, dest)
                    base[0] += c.size
                _rbd("tagging %s" % dest, img.metadata_remove, IMPORT_META_KEY)
                prog.done()
            finally:
                img.close()
        except BaseException:
            leftover = _remove_new_image(ioctx, new_image)
            if leftover:
                sys.stderr.write("rbdsr: %s\n" % leftover)
            raise
    finally:
        ioctx.close()
    return [d.to_snap for c in checked for d in c.diffs if d.to_snap]


def _apply_file(img, c, prog, base, dest):
    def sink(event, *args):
        if event == "size":
            if args[0] != img.size():
                _rbd("resizing %s" % dest, img.resize, args[0])
        elif event == "write":
            off, data = args
            _rbd("writing %s" % dest, img.write, data, off)
        elif event == "zero":
            off, n = args
            if hasattr(img, "write_zeroes"):
                _rbd("zeroing %s" % dest, img.write_zeroes, off, n)
            else:
                pos = off
                while pos < off + n:
                    k = min(rbdformat.CHUNK, off + n - pos)
                    _rbd("zeroing %s" % dest, img.write, ZERO[:k], pos)
                    pos += k
        elif event == "snap":
            if args[0].to_snap:
                _rbd("creating snapshot %s" % args[0].to_snap, img.create_snap, args[0].to_snap)
        prog.update(base[0] + f.count)

    with open(c.path, "rb") as raw:
        f = sidecar.HashingFile(raw)
        rbdformat.read_stream(f, c.path, sink)


def _remove_new_image(ioctx, name):
    """Remove an image this run created (its snapshots first); None, or what is left and why."""
    try:
        img = rbd.Image(ioctx, name)
        try:
            for s in list(img.list_snaps()):
                img.remove_snap(s["name"])
        finally:
            img.close()
        rbd.RBD().remove(ioctx, name)
    except rbd.ImageNotFound:
        pass
    except (rbd.Error, rados.Error) as e:
        code = getattr(e, "errno", None)
        return ("the half-imported image %s could not be removed (errno %s): remove it with rbd rm"
                % (name, abs(code) if isinstance(code, int) else errno.EIO))
    return None
