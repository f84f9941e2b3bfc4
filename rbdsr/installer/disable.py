"""install_rbdsr.py disable and uninstall_rbdsr.py: put every touched file
back byte-identical (checksums verified), remove what was added.

A file that is neither ours nor the original (an sm hotfix replaced it) is
not clobbered: only our hook block is taken out of it, or it is left alone."""
import glob
import os

from rbdsr.errors import RBDError
from rbdsr.installer import fileops, hook, lvmconf, sources, sweep, system, udevrule
from rbdsr.installer import layout as layoutmod
from rbdsr.installer.context import (CLEANUP_UNIT, CLEANUP_UNIT_TEXT, CLEANUP_WANTS, CLEANUP_WANTS_TEXT,
                                     MODULES_LOAD, PTH, PTH_TEXT, Refused, decode, encode)
from rbdsr.installer.manifest import Manifest

# hooks first (sm stops reaching our code), then configuration, then our files
_ORDER = {"hook": 0, "lvmconf": 1, "udev-rule": 2, "modules-load": 3, "installed": 4}


def undo_file(ctx, m, rel, entry):
    """Bring rel back to its original; True when nothing of ours is left in it."""
    path = ctx.abs(rel)
    where = ctx.show(rel)
    cur = fileops.read_bytes(path)
    cs = fileops.sha256(cur)
    role = entry["role"]
    if cs == entry.get("orig_sha256"):
        return True
    if ctx.dry_run:
        ctx.say("would restore %s" % where)
        return True
    if cs is not None and cs == entry.get("sha256"):
        if entry.get("orig_sha256") is None:
            fileops.remove(path)
            ctx.say("removed %s" % where)
            return True
        if m.read_backup(entry) is not None:
            fileops.restore_copy(m.backup_path(entry), path, tuple(entry["meta"]), entry.get("mtime_ns"))
            ctx.say("restored %s" % where)
            return True
        if role == "hook":  # backup lost: removing the block gives the original back
            stripped = encode(hook.strip(decode(cur), where))
            if fileops.sha256(stripped) == entry["orig_sha256"]:
                fileops.atomic_write(path, stripped)
                ctx.say("restored %s (hook removed; backup was missing)" % where)
                return True
        ctx.say("cannot restore %s: its backup is missing or damaged in %s" % (where, m.state_dir))
        return False
    if cur is None:
        ctx.say("%s is gone (removed since enable); nothing to restore" % where)
        return True
    return _undo_drifted(ctx, rel, role, cur)


def _undo_drifted(ctx, rel, role, cur):
    """rel changed since enable: take out only what is ours."""
    path, where = ctx.abs(rel), ctx.show(rel)
    text = decode(cur)
    if role == "hook":
        try:
            span = hook.find_block(hook.split_lines(text), where)
        except hook.HookError as e:
            ctx.say("%s; left as is" % e)
            return False
        if span is None:
            ctx.say("%s changed since enable (sm update?) and carries no hook: left as is" % where)
            return True
        fileops.atomic_write(path, encode(hook.strip(text, where)))
        ctx.say("%s changed since enable (sm update?): removed just the hook block" % where)
        return True
    if role == "lvmconf":
        stripped = lvmconf.remove_rbd_types(text)
        if stripped != text:
            if not _lvm_accepts(ctx, rel, encode(stripped)):
                return False
            fileops.atomic_write(path, encode(stripped))
            ctx.say("%s changed since enable: removed just the rbd device type RBDSR added" % where)
        else:
            ctx.say("%s changed since enable and has no rbd entry of RBDSR: left as is" % where)
        return True
    if role == "modules-load":
        kept = [ln for ln in hook.split_lines(text) if ln.strip() != "rbd"]
        if not "".join(kept).strip():
            fileops.remove(path)
            ctx.say("removed %s" % where)
        else:
            fileops.atomic_write(path, encode("".join(kept)))
            ctx.say("%s changed since enable: removed just the rbd line" % where)
        return True
    if rel.startswith(sources.INSTALL_DIR + "/"):
        fileops.remove(path)
        ctx.say("removed %s (modified since install)" % where)
        return True
    ctx.say("%s was modified since install: left as is; remove it by hand" % where)
    return False


def _lvm_accepts(ctx, rel, data):
    """True when LVM loads rel's directory with `data` in rel; else says why."""
    d = os.path.dirname(rel)
    try:
        lvmconf.validate_files(ctx.abs(d), ctx.show(d), {os.path.basename(rel): data})
    except RBDError as e:
        ctx.say("%s: %s; left as is" % (ctx.show(rel), e))
        return False
    return True


def _load_spec(ctx):
    """The hook definition, read before anything is removed (the installed
    copy of patches/ goes away with our files); None when unreadable."""
    for where in (ctx.patches_dir, None):
        try:
            return hook.load_spec(where)
        except hook.HookError:
            pass
    return None


def _stray_hooks(ctx, spec, done):
    """Hook blocks the manifest does not know (manifest lost, layout changed)."""
    if spec is None:
        return
    try:
        lay = layoutmod.detect(ctx.root, spec)
    except layoutmod.LayoutError:
        return
    for rel in lay.hook_files:
        if rel in done:
            continue
        text = decode(fileops.read_bytes(ctx.abs(rel)))
        if text is not None and hook.find_block(hook.split_lines(text), ctx.show(rel)) is not None:
            if ctx.dry_run:
                ctx.say("would remove the hook block from %s" % ctx.show(rel))
            else:
                fileops.atomic_write(ctx.abs(rel), encode(hook.strip(text, ctx.show(rel))))
                ctx.say("removed the hook block from %s (not in the manifest)" % ctx.show(rel))


def _remove_pycache(ctx, top):
    if not os.path.isdir(top):
        return
    for dirpath, dirnames, _ in os.walk(top):
        if "__pycache__" in dirnames:
            dirnames.remove("__pycache__")
            fileops.rmtree(os.path.join(dirpath, "__pycache__"))


def _remove_empty_dirs(ctx, rels):
    for rel in sorted(set(rels), key=lambda r: (-r.count("/"), r)):
        try:
            os.rmdir(ctx.abs(rel))
        except OSError:
            pass  # not empty (something not ours is in it) or already gone


def refuse_if_attached(ctx, force):
    devices = system.mapped_rbd_devices(ctx.root)
    if devices and not force:
        raise Refused("RBD devices are mapped on this host: %s; detach the RBD SRs on this host first "
                      "(or use --force)" % ", ".join(devices))
    if devices:
        ctx.say("warning: --force: going on with RBD devices mapped: %s" % ", ".join(devices))


def disable(ctx, force=None, manifest=None):
    """0 when nothing of ours is left, 1 when something had to be left (said why).
    manifest: the in-memory one of a failed enable (it may hold intents the
    disk copy missed)."""
    refuse_if_attached(ctx, ctx.force if force is None else force)
    m = manifest or Manifest.load(ctx.root)
    spec = _load_spec(ctx)
    sweep.sweep(ctx, m, spec)
    if not m.exists:
        ctx.say("no installation recorded in %s" % m.state_dir)
    leftovers = []
    done = set()
    rule_recorded = udevrule.RULE in m.files
    for rel, entry in sorted(m.files.items(), key=lambda kv: (_ORDER.get(kv[1]["role"], 9), kv[0])):
        if entry["role"] != "hook" and any(m.files[r]["role"] == "hook" for r in leftovers):
            # an sm file may still reach our code: keep the code it would import
            leftovers.append(rel)
            continue
        done.add(rel)
        # undo_file is idempotent by content, so a killed disable is simply re-run;
        # no manifest write per file (a full disk must not stop an undo)
        if undo_file(ctx, m, rel, entry):
            if not ctx.dry_run:
                del m.files[rel]
        else:
            leftovers.append(rel)
    _stray_hooks(ctx, spec, done)
    if ctx.dry_run:
        ctx.say("dry run: nothing was changed")
        return 0
    if rule_recorded and ctx.live:
        err = udevrule.reload_now()
        if err:
            ctx.say("warning: udev did not reload its rules (%s)" % err)
    # /usr/lib/rbdsr is the project's own directory: its byte-code goes too
    _remove_pycache(ctx, ctx.abs(sources.INSTALL_DIR))
    dirs = list(m.dirs)
    if leftovers:
        m.data["complete"] = False
        _remove_empty_dirs(ctx, [d for d in dirs if not m.state_dir.startswith(ctx.abs(d))])
        m.save()
        ctx.say("left in place: %s; the record stays in %s; fix what is said above and re-run disable"
                % (", ".join(ctx.show(r) for r in leftovers), m.state_dir))
        return 1
    fileops.rmtree(m.state_dir)
    _remove_empty_dirs(ctx, dirs)
    if m.exists:
        ctx.say("RBDSR disabled")
    return 0


def uninstall(ctx):
    """disable, then remove whatever the project installs even without a record."""
    if Manifest.load(ctx.root).data.get("packaged"):
        raise Refused("RBDSR was installed by the rbdsr package: remove it with `yum remove rbdsr` "
                      "(its scriptlet runs disable); nothing was changed")
    rc = disable(ctx)
    if ctx.dry_run:
        return rc
    if rc != 0:
        ctx.say("uninstall stopped: fix what is said above, then re-run uninstall_rbdsr.py "
                "(the record and backups in %s are kept)" % Manifest(ctx.root).state_dir)
        return rc
    top = ctx.abs(sources.INSTALL_DIR)
    if fileops.rmtree(top):
        ctx.say("removed %s" % ctx.show(sources.INSTALL_DIR))
    for pattern in ("usr/lib/python3*/site-packages", "usr/lib64/python3*/site-packages"):
        for site in glob.glob(ctx.abs(pattern)):
            pth = os.path.join(site, PTH)
            if fileops.read_bytes(pth) == PTH_TEXT.encode():
                fileops.remove(pth)
                ctx.say("removed %s" % ctx.show(os.path.relpath(pth, ctx.root)))
    for _src, rel in sources.COMMANDS:
        data = fileops.read_bytes(ctx.abs(rel))
        if data is not None and sources.COMMAND_MARK in data:
            fileops.remove(ctx.abs(rel))
            ctx.say("removed %s" % ctx.show(rel))
    for rel, text in ((CLEANUP_UNIT, CLEANUP_UNIT_TEXT), (CLEANUP_WANTS, CLEANUP_WANTS_TEXT)):
        if fileops.read_bytes(ctx.abs(rel)) == text.encode():
            fileops.remove(ctx.abs(rel))
            ctx.say("removed %s" % ctx.show(rel))
            try:
                os.rmdir(os.path.dirname(ctx.abs(rel)))
            except OSError:
                pass
    conf = decode(fileops.read_bytes(ctx.abs(MODULES_LOAD)))
    if conf is not None and [ln.strip() for ln in conf.splitlines() if ln.strip()] == ["rbd"]:
        fileops.remove(ctx.abs(MODULES_LOAD))
        ctx.say("removed %s" % ctx.show(MODULES_LOAD))
    if udevrule.in_place(ctx.root):
        fileops.remove(ctx.abs(udevrule.RULE))
        ctx.say("removed %s" % ctx.show(udevrule.RULE))
    for d in lvmconf.LVM_DIRS:
        for rel in (lvmconf.main_rel(d), lvmconf.local_rel(d)):
            text = decode(fileops.read_bytes(ctx.abs(rel)))
            if text is None:
                continue
            stripped = lvmconf.remove_rbd_types(text)  # only what carries RBDSR's markers
            if stripped != text and _lvm_accepts(ctx, rel, encode(stripped)):
                if not stripped.strip() and rel == lvmconf.local_rel(d):
                    fileops.remove(ctx.abs(rel))  # nothing but our block: enable created it
                else:
                    fileops.atomic_write(ctx.abs(rel), encode(stripped))
                ctx.say("removed the rbd device type RBDSR added (marked) from %s" % ctx.show(rel))
    state = Manifest(ctx.root).state_dir
    if fileops.rmtree(state):
        ctx.say("removed %s" % state)
    return rc

