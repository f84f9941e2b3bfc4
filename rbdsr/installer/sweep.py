"""Temp files a killed installer left behind (a kill between a temp file's
creation and its rename in fileops): found in every directory the installer
writes to, reported by check, removed by the next enable or disable (which
run under the installer lock, so no live run owns them)."""
import os

from rbdsr.installer import fileops, lvmconf, sources, udevrule
from rbdsr.installer import layout as layoutmod
from rbdsr.installer.context import MODULES_LOAD


def _tree_dirs(top):
    out = []
    for dirpath, dirnames, _files in os.walk(top):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        out.append(dirpath)
    return out


def candidate_dirs(ctx, manifest, spec=None):
    """Every directory an enable or disable may have written a temp file in."""
    dirs = set(os.path.dirname(ctx.abs(rel)) for rel in list(manifest.files) + [MODULES_LOAD])
    dirs.update(ctx.abs(d) for d in lvmconf.LVM_DIRS)
    dirs.add(os.path.dirname(ctx.abs(udevrule.RULE)))
    if spec is not None:
        try:
            lay = layoutmod.detect(ctx.root, spec)
            dirs.update(os.path.dirname(ctx.abs(rel)) for rel in lay.hook_files)
            dirs.add(ctx.abs(lay.site_packages))
        except layoutmod.LayoutError:
            pass
    dirs.update(_tree_dirs(manifest.state_dir))
    dirs.update(_tree_dirs(ctx.abs(sources.INSTALL_DIR)))
    return sorted(dirs)


def leftovers(ctx, manifest, spec=None):
    """Relpaths of our temp files under the root."""
    return [os.path.relpath(p, ctx.root) for p in fileops.find_temps(candidate_dirs(ctx, manifest, spec))]


def sweep(ctx, manifest, spec=None):
    """Remove them (not in a dry run: then only say so)."""
    found = leftovers(ctx, manifest, spec)
    if not found:
        return []
    if ctx.dry_run:
        ctx.say("would remove %d temp file(s) left by an interrupted run" % len(found))
        return found
    fileops.sweep_temps(os.path.dirname(ctx.abs(rel)) for rel in found)
    ctx.say("removed %d temp file(s) left by an interrupted run: %s"
            % (len(found), ", ".join(ctx.show(rel) for rel in found)))
    return found
