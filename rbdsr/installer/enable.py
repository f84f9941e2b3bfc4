"""install_rbdsr.py enable: a list of idempotent steps, the manifest saved
after each, the hook applied last so sm never points at code not yet there.

A run interrupted anywhere is completed by the next enable and undone by
disable; a run that fails on a host that was not enabled is undone at once."""
import os
import sys

from rbdsr.errors import RBDError
from rbdsr.installer import fileops, hook, lvmconf, sources, sweep, system, udevrule, xapicheck
from rbdsr.installer import layout as layoutmod
from rbdsr.installer.context import (CLEANUP_UNIT, CLEANUP_UNIT_TEXT, CLEANUP_WANTS, CLEANUP_WANTS_TEXT,
                                     MODULES_LOAD, PTH, PTH_TEXT, Refused, decode, encode)
from rbdsr.installer.manifest import Manifest

STEPS = ("state", "files", "pth", "compile", "udev-rule", "lvm-conf", "modules-load", "modprobe", "cleanup-unit", "hook",
         "finish")
STOP_ENV = "RBDSR_INSTALL_STOP_AFTER"
STOP_EXIT = 99


def _maybe_stop(step):
    """Test hook: die right after `step`, as a kill would."""
    if os.environ.get(STOP_ENV) == step:
        sys.stderr.write("%s=%s: stopping hard\n" % (STOP_ENV, step))
        sys.stderr.flush()
        os._exit(STOP_EXIT)


def compile_check_live(ctx, path):
    """None when dom0's python compiles `path` (no .pyc written), else why not."""
    code = "import sys; compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')"
    return system.run_python(ctx.root, code, [path])


def compile_tree_live(ctx, top):
    """Byte-compile `top` with dom0's python (python3 -m compileall); None or why not."""
    code = "import compileall, sys; sys.exit(0 if compileall.compile_dir(sys.argv[1], quiet=1, force=True) else 1)"
    return system.run_python(ctx.root, code, [top], timeout=300)


class Enabler(object):
    def __init__(self, ctx):
        self.ctx = ctx
        self.spec = hook.load_spec(ctx.patches_dir)
        self.version = sources.read_version(ctx.source)
        try:
            self.layout = layoutmod.detect(ctx.root, self.spec)
        except layoutmod.LayoutError as e:
            raise Refused(str(e))
        self.files = sources.collect(ctx.source)
        self.manifest = Manifest.load(ctx.root)
        # packaged: rpm owns /usr/lib/rbdsr and rbdsr.pth; sticky, so an admin's later
        # `install_rbdsr.py enable` (after a hotfix) never takes those files over
        self.packaged = bool(ctx.packaged or self.manifest.data.get("packaged"))
        if self.packaged and os.path.realpath(ctx.source) != os.path.realpath(ctx.abs(sources.INSTALL_DIR)):
            raise Refused("--packaged: the release must be the package's own copy in %s, not %s"
                          % (ctx.show(sources.INSTALL_DIR), ctx.source))
        self.notes_before = []
        self._precheck()

    # -- refuse before changing anything --------------------------------
    def _precheck(self):
        self._refuse_iscsi_takeover()
        self._refuse_swap_under_attached_srs()
        self.hook_plan = {}
        for rel in self.layout.hook_files:
            where = self.ctx.show(rel)
            cur = decode(fileops.read_bytes(self.ctx.abs(rel)))
            try:
                new = hook.apply(cur, self.spec, self.version, where)
            except hook.HookError as e:
                raise Refused("%s; nothing was changed" % e)
            err = hook.compiles(new, where)
            if err:
                raise Refused("%s would not compile once hooked (%s); nothing was changed" % (where, err))
            self.hook_plan[rel] = new
        self.lvm_plan = {}
        for d in lvmconf.LVM_DIRS:
            main = lvmconf.main_rel(d)
            if fileops.read_bytes(self.ctx.abs(main)) is None:
                raise Refused("%s is missing (expected on an XCP-ng/XenServer host); nothing was changed"
                              % self.ctx.show(main))
            try:
                self.lvm_plan[lvmconf.local_rel(d)] = self._plan_lvmlocal(d)
            except RBDError as e:
                raise Refused("%s; nothing was changed" % e)

    def _plan_lvmlocal(self, d):
        """(original, new) bytes of d's lvmlocal.conf, judged by LVM with the
        directory's other files as they will be (an older release's marked
        lvm.conf entry is taken out by step_lvm_conf)."""
        rel = lvmconf.local_rel(d)
        orig = self._original(rel, "lvmconf", fileops.read_bytes(self.ctx.abs(rel)))
        others = {}
        for name in sorted(os.listdir(self.ctx.abs(d))):
            path = os.path.join(self.ctx.abs(d), name)
            data = fileops.read_bytes(path) if name.endswith(".conf") and os.path.isfile(path) else None
            if name != lvmconf.LOCAL and data is not None and lvmconf.added_by_us(decode(data)):
                others[name] = encode(lvmconf.remove_rbd_types(decode(data)))
        where = self.ctx.show(d)
        return orig, lvmconf.plan_local(self.ctx.abs(d), where, orig, others, decode, encode)

    def _refuse_iscsi_takeover(self):
        """A genuine iSCSI SR on port 6789 would be served by RBDSR once hooked.
        Under another --root, this host's XAPI says nothing about that root (tests opt in)."""
        if not (self.ctx.live or os.environ.get(xapicheck.UNDER_ROOT_ENV) == "1"):
            return
        srs, why_not = xapicheck.iscsi_srs_on_6789()
        if why_not:
            self.notes_before.append("note: " + why_not)
        if not srs:
            return
        names = "; ".join("SR %s %r (target IQN %s)" % (u, n, iqn) for u, n, iqn in srs)
        if not self.ctx.allow_iscsi_6789:
            raise Refused("genuine iSCSI SRs use port 6789, which RBDSR would take over once enabled: %s. "
                          "Move them to another port (or set device-config rbd=true on SRs that really "
                          "are RBD), or re-run with --allow-iscsi-on-6789 to enable anyway; nothing was "
                          "changed" % names)
        self.notes_before.append("warning: --allow-iscsi-on-6789: RBDSR will serve %s" % names)

    def _files_to_swap(self):
        """Installed files of ours this enable would replace or remove (an upgrade)."""
        if not self.manifest.exists:
            return []
        wanted = set()
        out = []
        for rel_src in self.files:
            rel = os.path.join(sources.INSTALL_DIR, rel_src)
            wanted.add(rel)
            cur = fileops.read_bytes(self.ctx.abs(rel))
            if cur is not None and cur != fileops.read_bytes(os.path.join(self.ctx.source, rel_src)):
                out.append(rel)
        out.extend(rel for rel, e in sorted(self.manifest.files.items())
                   if e["role"] == "installed" and rel.startswith(sources.INSTALL_DIR + "/") and rel not in wanted
                   and os.path.exists(self.ctx.abs(rel)))
        return out

    def _refuse_swap_under_attached_srs(self):
        """Files are replaced one by one: an SR operation running meanwhile could
        import a mix of two releases. Mapped RBD devices mean attached SRs here."""
        swap = self._files_to_swap()
        devices = system.mapped_rbd_devices(self.ctx.root) if swap else []
        if not devices:
            return
        installed = self.manifest.data.get("version", "?")
        if not self.ctx.force:
            raise Refused("RBDSR %s is installed and RBD devices are mapped on this host (%s): replacing %d of "
                          "its files while SRs are attached could give a running SR operation a mix of %s "
                          "and %s. Detach the RBD SRs on this host first (migrate its VMs away, then "
                          "xe pbd-unplug each RBD SR's PBD of this host), run enable, and plug them again "
                          "(--force replaces the files anyway); nothing was changed"
                          % (installed, ", ".join(devices), len(swap), installed, self.version))
        self.notes_before.append("warning: --force: replacing %d files of RBDSR %s while RBD devices are "
                                 "mapped: %s" % (len(swap), installed, ", ".join(devices)))

    # -- helpers --------------------------------------------------------
    def _mkdirs(self, rels):
        """mkdir -p of each rel, every new directory recorded (and saved) before
        it is made, so a kill in between still leaves disable something to remove."""
        missing = []
        for rel in rels:
            missing.extend(d for d in fileops.missing_dirs(self.ctx.abs(rel)) if d not in missing)
        if self.ctx.dry_run or not missing:
            return
        self.manifest.add_dirs(missing)
        self.manifest.save()
        for rel in rels:
            fileops.makedirs(self.ctx.abs(rel), [])

    def ensure_file(self, rel, role, make_new, new_meta=None):
        """Make rel hold make_new(original bytes)."""
        self.ensure_files([(rel, role, make_new, new_meta)])

    def ensure_files(self, specs):
        """For each (rel, role, make_new, new_meta): back up the original when it
        is new to us, then record every intended checksum (one manifest save),
        then write the files."""
        ctx, m = self.ctx, self.manifest
        writes = []
        dirty = False
        for rel, role, make_new, new_meta in specs:
            path = ctx.abs(rel)
            cur = fileops.read_bytes(path)
            orig = self._original(rel, role, cur)
            new = make_new(orig)
            if ctx.dry_run:
                if new != cur:
                    ctx.say("would %s %s" % ("create" if cur is None else "change", ctx.show(rel)))
                continue
            entry = m.files.get(rel)
            if entry is None or entry.get("orig_sha256") != fileops.sha256(orig) or not m.backup_ok(entry):
                # the mtime too when the file on disk is the original: rpm -V checks it
                entry = m.record_original(rel, role, orig, fileops.file_meta(path) if cur is not None else None,
                                          fileops.mtime_ns(path) if cur is not None and cur == orig else None)
                dirty = True
            elif cur is not None and cur == orig:
                # the same bytes put back by a package update: restore its mode and mtime
                meta, mtime = list(fileops.file_meta(path)), fileops.mtime_ns(path)
                if entry.get("meta") != meta or entry.get("mtime_ns") != mtime:
                    entry["meta"], entry["mtime_ns"] = meta, mtime
                    dirty = True
            if entry.get("sha256") != fileops.sha256(new):
                entry["sha256"] = fileops.sha256(new)
                dirty = True
            if new != cur:
                writes.append((rel, path, cur, new, new_meta))
        if dirty:
            m.save()
        for rel, path, cur, new, new_meta in writes:
            fileops.atomic_write(path, new, None if cur is not None else new_meta)
            ctx.say("%s %s" % ("created" if cur is None else "changed", ctx.show(rel)))

    def _original(self, rel, role, cur):
        """The file as it was before RBDSR touched it (None: absent). For the
        hook this is the current text minus our block, so an sm update becomes
        the new original; otherwise the backup while the file is still ours."""
        m = self.manifest
        entry = m.files.get(rel)
        if role == "hook":
            return encode(hook.strip(decode(cur), self.ctx.show(rel)))
        if entry is not None and (fileops.sha256(cur) == entry.get("sha256") or role == "installed"):
            orig = m.read_backup(entry)
            if orig is None and entry.get("orig_sha256") is not None:
                raise Refused("the backup of %s is missing or damaged in %s" % (self.ctx.show(rel), m.state_dir))
            return orig
        return cur

    # -- steps ----------------------------------------------------------
    def step_state(self):
        m = self.manifest
        if self.ctx.dry_run:
            if not m.exists:
                self.ctx.say("would create %s" % self.ctx.show(os.path.relpath(m.path, self.ctx.root)))
            return
        created = []
        fileops.makedirs(m.state_dir, created)
        if not m.exists and not created:
            # our own directory without our record: a kill inside the first save made it
            created = [m.state_dir]
        m.add_dirs(created)
        m.data.update({"version": self.version, "layout": self.layout.as_dict(), "complete": False,
                       "packaged": self.packaged,
                       "hook_block_sha256": fileops.sha256(encode(self.spec.block(self.version)))})
        m.data["steps_done"] = []

    def step_files(self):
        if self.packaged:
            self._leave_to_package()
            return
        wanted = set()
        specs = []
        for rel_src in self.files:
            rel = os.path.join(sources.INSTALL_DIR, rel_src)
            wanted.add(rel)
            src = os.path.join(self.ctx.source, rel_src)
            with open(src, "rb") as f:
                data = f.read()
            mode = 0o755 if os.stat(src).st_mode & 0o100 else 0o644
            specs.append((rel, "installed", lambda orig, d=data: d, (mode, os.getuid(), os.getgid())))
        for rel_src, rel in sources.COMMANDS:
            wanted.add(rel)
            with open(os.path.join(self.ctx.source, rel_src), "rb") as f:
                data = f.read()
            specs.append((rel, "installed", lambda orig, d=data: d, (0o755, os.getuid(), os.getgid())))
        self._mkdirs(sorted(set(os.path.dirname(s[0]) for s in specs)))
        self.ensure_files(specs)
        # files a previous release installed and this one does not
        for rel, entry in sorted(self.manifest.files.items()):
            if entry["role"] == "installed" and rel.startswith(sources.INSTALL_DIR + "/") and rel not in wanted:
                self._retire(rel, entry)

    def _leave_to_package(self):
        """Packaged: rpm put the release (and the commands) in place. Entries an
        earlier install from a release directory made for them are dropped:
        restoring or removing those files now would fight rpm, which owns them."""
        if self.ctx.dry_run:
            return
        m = self.manifest
        commands = set(dest for _src, dest in sources.COMMANDS)
        for rel, entry in sorted(m.files.items()):
            if entry["role"] == "installed" and (rel.startswith(sources.INSTALL_DIR + "/") or rel in commands):
                del m.files[rel]
        m.data["dirs"] = [d for d in m.dirs if d != sources.INSTALL_DIR
                          and not d.startswith(sources.INSTALL_DIR + "/")]

    def _retire(self, rel, entry):
        if self.ctx.dry_run:
            self.ctx.say("would remove %s (not part of this release)" % self.ctx.show(rel))
            return
        from rbdsr.installer.disable import undo_file
        if undo_file(self.ctx, self.manifest, rel, entry):
            del self.manifest.files[rel]
            self.manifest.save()

    def step_pth(self):
        site = self.layout.site_packages
        rel = os.path.join(site, PTH)
        if self.packaged and site == sources.DOM0_SITE_PACKAGES:
            if fileops.read_bytes(self.ctx.abs(rel)) != PTH_TEXT.encode():
                raise RBDError("%s of the rbdsr package is missing or changed — reinstall the package"
                               % self.ctx.show(rel))
            if rel in self.manifest.files and not self.ctx.dry_run:
                del self.manifest.files[rel]  # an earlier install's; rpm owns the file now
            return
        # not packaged, or dom0's python looks elsewhere than the package's rbdsr.pth: ours
        self._mkdirs([site])
        self.ensure_file(rel, "installed", lambda orig: PTH_TEXT.encode())

    def step_compile(self):
        top = self.ctx.abs(sources.INSTALL_DIR)
        if self.ctx.dry_run:
            return
        if self.ctx.live:
            err = compile_tree_live(self.ctx, top)
            if err:
                raise RBDError("compiling %s with %s failed: %s" % (top, system.dom0_python(self.ctx.root), err))
            return
        for rel_src in self.files:
            if rel_src.endswith(".py"):
                path = os.path.join(top, rel_src)
                err = hook.compiles(decode(fileops.read_bytes(path)), path)
                if err:
                    raise RBDError("%s does not compile: %s" % (path, err))
        self.ctx.say("syntax-checked %s with %s; no .pyc written (not the running system)"
                     % (top, sys.executable))

    def step_udev_rule(self):
        self._mkdirs([os.path.dirname(udevrule.RULE)])
        self.ensure_file(udevrule.RULE, "udev-rule", lambda orig: udevrule.TEXT.encode(),
                         (0o644, os.getuid(), os.getgid()))
        if self.ctx.live and not self.ctx.dry_run:
            err = udevrule.reload_now()
            if err:
                self.ctx.say("warning: udev did not re-run its rules on mapped RBD devices (%s); "
                             "the rule applies from the next map" % err)

    def _lvmlocal_new(self, rel, orig):
        planned_orig, new = self.lvm_plan[rel]
        if orig != planned_orig:  # cannot happen in one run; never write what LVM did not see
            raise RBDError("%s changed while enable ran; re-run enable" % self.ctx.show(rel))
        return new

    def step_lvm_conf(self):
        specs = []
        for d in lvmconf.LVM_DIRS:
            rel = lvmconf.local_rel(d)
            meta = fileops.file_meta(self.ctx.abs(lvmconf.main_rel(d)))
            specs.append((rel, "lvmconf", lambda orig, r=rel: self._lvmlocal_new(r, orig), meta))
        self.ensure_files(specs)
        # an older release edited lvm.conf itself: its original comes back now
        for rel, entry in sorted(self.manifest.files.items()):
            if entry["role"] == "lvmconf" and rel not in self.lvm_plan:
                if self.ctx.dry_run:
                    self.ctx.say("would restore %s (an older release changed it)" % self.ctx.show(rel))
                else:
                    self._retire(rel, entry)
        if self.ctx.dry_run:
            return
        for d in lvmconf.LVM_DIRS:
            _ok, problems = lvmconf.check_dir(self.ctx.abs(d), self.ctx.show(d))
            if problems:
                raise RBDError("after writing %s: %s" % (self.ctx.show(lvmconf.local_rel(d)), "; ".join(problems)))

    def step_modules_load(self):
        self._mkdirs([os.path.dirname(MODULES_LOAD)])

        def add_rbd(orig):
            text = decode(orig) or ""
            if "rbd" in [ln.strip() for ln in text.splitlines()]:
                return orig
            return encode(text + ("" if not text or text.endswith("\n") else "\n") + "rbd\n")
        self.ensure_file(MODULES_LOAD, "modules-load", add_rbd)

    def step_modprobe(self):
        if not self.ctx.live:
            self.ctx.say("modprobe rbd skipped: not the running system")
            return
        if self.ctx.dry_run:
            return
        err = system.modprobe_rbd()
        if err:
            self.ctx.say("warning: could not load the rbd module now (%s); it loads at boot" % err)

    def step_cleanup_unit(self):
        self._mkdirs([os.path.dirname(CLEANUP_UNIT), os.path.dirname(CLEANUP_WANTS)])
        self.ensure_files([(CLEANUP_UNIT, "installed", lambda orig: CLEANUP_UNIT_TEXT.encode(), None),
                           (CLEANUP_WANTS, "installed", lambda orig: CLEANUP_WANTS_TEXT.encode(), None)])

    def step_hook(self):
        for rel, new in sorted(self.hook_plan.items()):
            self.ensure_file(rel, "hook", lambda orig, n=new: encode(n))
            if not self.ctx.dry_run:
                self._verify_hook(rel)

    def _verify_hook(self, rel):
        path = self.ctx.abs(rel)
        where = self.ctx.show(rel)
        text = decode(fileops.read_bytes(path))
        if hook.state(text, self.spec, self.version, where) != "hooked":
            raise RBDError("%s: the hook is not in place after writing it" % where)
        err = compile_check_live(self.ctx, path) if self.ctx.live else hook.compiles(text, where)
        if err:
            raise RBDError("%s does not compile once hooked: %s" % (where, err))

    def step_finish(self):
        self.manifest.data["complete"] = True

    # -- driver ---------------------------------------------------------
    def run(self):
        ctx, m = self.ctx, self.manifest
        was_complete = m.exists and m.data.get("complete")
        ctx.say("RBDSR %s: sm layout %s (%s), product %s" % (
            self.version, self.layout.kind, ", ".join(ctx.show(r) for r in self.layout.hook_files),
            self.layout.product_version))
        for note in self.layout.notes:
            ctx.say("note: " + note)
        for line in self.notes_before:
            ctx.say(line)
        lvm_files = [f(d) for d in lvmconf.LVM_DIRS for f in (lvmconf.main_rel, lvmconf.local_rel)]
        for rel in list(self.layout.hook_files) + lvm_files:
            sha = fileops.sha256(fileops.read_bytes(ctx.abs(rel)))
            ctx.say("  %s sha256 %s" % (ctx.show(rel), sha))
        sweep.sweep(ctx, m, self.spec)
        step = None
        try:
            for step in STEPS:
                getattr(self, "step_" + step.replace("-", "_"))()
                if not ctx.dry_run:
                    m.data["steps_done"].append(step)
                    m.save()
                _maybe_stop(step)
        except (RBDError, EnvironmentError) as e:
            why = getattr(e, "strerror", None) and "%s: %s" % (e.strerror, e.filename or "") or str(e)
            if ctx.dry_run:
                raise
            if was_complete:
                raise Refused("enable failed during step %s: %s; the installation is partly updated: "
                              "re-run enable, or disable" % (step, why))
            ctx.say("enable failed during step %s: %s; undoing it" % (step, why))
            from rbdsr.installer.disable import disable
            try:
                disable(ctx, force=True, manifest=m)
            except (RBDError, EnvironmentError) as e2:
                raise Refused("enable failed during step %s: %s; undoing failed too (%s): run disable"
                              % (step, why, e2))
            raise Refused("enable failed during step %s: %s; the host was left as it was" % (step, why))
        ctx.say("dry run: nothing was changed" if ctx.dry_run else "RBDSR %s enabled" % self.version)
        return 0


def enable(ctx):
    return Enabler(ctx).run()
