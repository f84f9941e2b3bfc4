"""`rbdsr`: SR snapshots, backups in Ceph's own formats, restore, golden-SR clones.

Exit codes: 0 done, 1 failed (Ceph, XAPI, I/O), 2 usage or bad input (nothing
changed), 3 refused because the SR or image is in use (nothing changed)."""
import argparse
import copy
import sys
import uuid as uuidmod

from rbdsr.errors import ConfigError, InUseError, NotFoundError, RBDError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_IN_USE = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("rbdsr: %s\n" % message)
        sys.exit(EXIT_BAD_INPUT)


def build_parser():
    p = _Parser(prog="rbdsr", description="RBDSR admin: snapshots, exports, restore and clones of RBD SRs."
                " SR is an SR uuid or name-label; credentials come from the SR's device-config in XAPI.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("snapshot", help="snapshot the SR's image now (crash-consistent for every VDI)")
    s.add_argument("sr")
    s.add_argument("--name", help="label added to the name rbdsr-<sr uuid>-<UTC time>-<label>")
    s.add_argument("--keep", type=int, help="then keep only the newest K snapshots of this SR")

    s = sub.add_parser("snapshots", help="list the SR's snapshots, oldest first")
    s.add_argument("sr")

    s = sub.add_parser("remove-snapshot", help="remove one of the SR's snapshots")
    s.add_argument("sr")
    s.add_argument("snapshot")

    s = sub.add_parser("prune", help="keep only the newest K snapshots of the SR")
    s.add_argument("sr")
    s.add_argument("--keep", type=int, required=True)

    s = sub.add_parser("export", help="export a snapshot: full (rbd import --export-format 2) or incremental"
                       " (--since; rbd import-diff), with FILE.sha256")
    s.add_argument("sr")
    s.add_argument("--snapshot", required=True)
    s.add_argument("--since", help="older snapshot: write only what changed since it")
    s.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    s.add_argument("file")

    s = sub.add_parser("import", help="restore a chain of exports (full, then incrementals) into a new image")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--image", required=True, help="the new image (in the SR's pool)")
    s.add_argument("--sr", required=True, help="SR whose credentials and pool to use")
    s.add_argument("--no-verify", action="store_true", help="import files that have no FILE.sha256")

    s = sub.add_parser("restore", help="roll the SR back to a snapshot (the SR must be detached everywhere)")
    s.add_argument("sr")
    s.add_argument("--snapshot", required=True)

    s = sub.add_parser("clone", help="copy-on-write clone of a snapshot, made attachable as a new SR")
    s.add_argument("sr")
    s.add_argument("--snapshot", required=True)
    s.add_argument("--image", required=True, help="name of the clone image (in the SR's pool)")
    s.add_argument("--name-label", help="name of the new SR (default: '<SR name> clone')")
    s.add_argument("--introduce", action="store_true", help="run the xe sr-introduce/pbd-create/pbd-plug steps"
                   " (default: print them)")

    s = sub.add_parser("flatten", help="copy the parent's data into a cloned SR's image (no parent left)")
    s.add_argument("sr")
    return p


def _sr(ident):
    from rbdsr.admin.xapi import Xapi
    with Xapi() as xs:
        return xs.sr_info(ident)


def _image(sr, quiet):
    from rbdsr.admin import ops
    backend = ops.connect(sr.cfg)
    return backend, ops.SRImage(backend, sr.cfg, sr.uuid, quiet=quiet)


def _out(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def run(args):
    from rbdsr.backends import librbd_available
    sr = _sr(args.sr)
    if not librbd_available():
        raise RBDError("rbdsr needs librbd's python bindings (python3-rados, python3-rbd) on this host:"
                       " install them from your Ceph release's repository")
    from rbdsr.admin import ops
    if args.command == "import":
        backend = ops.connect(sr.cfg)
        try:
            snaps = ops.import_chain(backend, sr.cfg.pool, sr.cfg.namespace, args.image, args.files,
                                     verify=not args.no_verify, quiet=args.quiet)
        finally:
            backend.close()
        _out("imported %d file(s) into %s; snapshots: %s" % (len(args.files), sr.cfg.image_spec(args.image),
                                                          ", ".join(snaps)))
        return EXIT_OK
    backend, img = _image(sr, args.quiet)
    try:
        return _dispatch(args, sr, backend, img)
    finally:
        backend.close()


def _dispatch(args, sr, backend, img):
    c = args.command
    if c == "snapshot":
        name, removed = img.snapshot(args.name, args.keep)
        _out(name)
        for r in removed:
            _out("removed %s (retention: keep %d)" % (r, args.keep))
    elif c == "snapshots":
        for s in img.snapshots():
            extra = " protected, clones: %s" % ", ".join(s.children) if s.children else (
                " protected" if s.protected else "")
            _out("%s  %d bytes%s" % (s.name, s.size, extra))
    elif c == "remove-snapshot":
        img.remove_snapshot(args.snapshot)
        _out("removed %s" % args.snapshot)
    elif c == "prune":
        for r in img.retain(args.keep):
            _out("removed %s" % r)
    elif c == "export":
        count, digest = img.export(args.snapshot, args.file, since=args.since, force=args.force)
        _out("%s  %s (%d bytes)" % (digest, args.file, count))
    elif c == "restore":
        img.restore(args.snapshot, sr)
        _out("SR %s rolled back to %s; attach it again (xe pbd-plug on every host), then xe sr-scan"
             % (sr.uuid, args.snapshot))
    elif c == "clone":
        return _clone(args, sr, backend, img)
    elif c == "flatten":
        parent = img.flatten()
        _out("%s no longer depends on %s" % (sr.cfg.image_spec(), parent))
    return EXIT_OK


def _clone(args, sr, backend, img):
    from rbdsr.admin import introduce
    new_sr = str(uuidmod.uuid4())
    protected_now = img.clone(args.snapshot, args.image, new_sr)
    try:
        vdi_map = _rename_clone(sr, backend, args.image, new_sr, img.say)
    except BaseException:
        img.drop_clone(args.image, args.snapshot if protected_now else None)
        raise
    _out("clone %s of %s@%s is SR %s (%d VDI(s) with new uuids)"
         % (sr.cfg.image_spec(args.image), sr.cfg.image_spec(), args.snapshot, new_sr, len(vdi_map)))
    label = args.name_label or "%s clone" % (sr.name_label or sr.uuid)
    steps = introduce.Steps(sr, new_sr, args.image, label)
    if args.introduce:
        from rbdsr.admin.xapi import Xapi
        with Xapi() as xs:
            steps.run(xs, _out)
    else:
        _out("to attach it as a new SR in this pool, run:")
        for line in steps.commands():
            _out("  " + line)
    return EXIT_OK


def _rename_clone(sr, backend, image, new_sr, say):
    """Map the clone on this host, give it its new identity, unmap it."""
    from rbdsr import krbd
    from rbdsr.admin import srclone
    cfg = copy.copy(sr.cfg)
    cfg.image = image
    image_id = krbd.image_id_from_config(cfg, backend.fsid())
    dev = krbd.map_image(image_id, cfg.monitors, backend.creds, timeout=cfg.timeout,
                         osd_timeout=cfg.osd_timeout)
    try:
        return srclone.new_identity(dev.dev_path, sr.uuid, new_sr, timeout=max(60.0, cfg.timeout), say=say)
    finally:
        krbd.unmap(image_id, timeout=cfg.timeout)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except InUseError as e:
        sys.stderr.write("rbdsr: refused: %s\n" % e)
        return EXIT_IN_USE
    except (ConfigError, NotFoundError) as e:
        sys.stderr.write("rbdsr: %s\n" % e)
        return EXIT_BAD_INPUT
    except RBDError as e:
        from rbdsr.admin.rbdformat import FormatError
        from rbdsr.admin.sidecar import ChecksumError
        sys.stderr.write("rbdsr: %s\n" % e)
        return EXIT_BAD_INPUT if isinstance(e, (FormatError, ChecksumError)) else EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("rbdsr: interrupted\n")
        return EXIT_FAILED
    except EnvironmentError as e:
        sys.stderr.write("rbdsr: %s\n" % (e.strerror and "%s: %s" % (e.strerror, e.filename or "") or e))
        return EXIT_FAILED
    except Exception as e:  # a bug: say what, not a traceback an admin cannot act on
        sys.stderr.write("rbdsr: internal error %s: %s\n" % (e.__class__.__name__, e))
        return EXIT_FAILED
