"""install_rbdsr.py check and status, and the fingerprints `RBDSR.py version` prints.

check looks at the files as they are now, not only at the manifest: the
classic failure is an sm update restoring the stock LVMoISCSISR.py / LVHDoISCSISR.py."""
import os

from rbdsr.errors import RBDError
from rbdsr.installer import fileops, hook, lvmconf, sources, sweep, system, udevrule
from rbdsr.installer import layout as layoutmod
from rbdsr.installer.context import MODULES_LOAD, decode
from rbdsr.installer.manifest import Manifest

# the driver class imports only where sm is: this proves it loads against the installed sm
_IMPORT_CODE = "import sys; sys.path[:0] = sys.argv[1:]; from rbdsr.smglue import driver"


def _spec(ctx):
    try:
        return hook.load_spec(ctx.patches_dir)
    except hook.HookError:
        return hook.load_spec()


def hook_problem(ctx, rel, state, version):
    where = ctx.show(rel)
    return {
        "absent": "hook missing in %s — run install_rbdsr.py enable" % where,
        "outdated": "hook in %s is not the one of RBDSR %s — run install_rbdsr.py enable" % (where, version),
        "broken": "hook markers or anchor broken in %s — fix the file, then run install_rbdsr.py enable" % where,
        "missing": "%s is missing" % where,
    }.get(state)


class Report(object):
    def __init__(self):
        self.ok = []
        self.problems = []
        self.notes = []


def collect(ctx, ceph=False, target=None, timeout=3.0):
    """Report of everything check verifies."""
    r = Report()
    m = Manifest.load(ctx.root)
    spec = _spec(ctx)
    version = m.data.get("version") or sources.read_version(ctx.source)
    if not m.exists:
        r.problems.append("not installed (no %s) — run install_rbdsr.py enable" % m.path)
    elif not m.data.get("complete"):
        r.problems.append("an enable did not finish — run install_rbdsr.py enable")
    try:
        lay = layoutmod.detect(ctx.root, spec)
    except layoutmod.LayoutError as e:
        r.problems.append(str(e))
        lay = None
    if lay is not None:
        for rel in lay.hook_files:
            text = decode(fileops.read_bytes(ctx.abs(rel)))
            state = hook.state(text, spec, version, ctx.show(rel))
            if state == "hooked":
                r.ok.append("hook %s in %s" % (version, ctx.show(rel)))
            else:
                r.problems.append(hook_problem(ctx, rel, state, version))
    bad = []
    for rel, entry in sorted(m.files.items()):
        if entry["role"] != "installed":
            continue
        cs = fileops.sha256(fileops.read_bytes(ctx.abs(rel)))
        if cs != entry.get("sha256"):
            bad.append("%s %s" % (ctx.show(rel), "missing" if cs is None else "modified"))
    if bad:
        r.problems.append("installed files differ from what enable wrote: %s — run install_rbdsr.py enable"
                          % "; ".join(bad))
    elif m.data.get("packaged"):
        r.ok.append("%s belongs to the rbdsr package (rpm -V rbdsr verifies it)" % ctx.show(sources.INSTALL_DIR))
    elif m.exists:
        r.ok.append("%d installed files match the manifest"
                    % sum(1 for e in m.files.values() if e["role"] == "installed"))
    _check_importable(ctx, lay, r)
    temps = sweep.leftovers(ctx, m, spec)
    if temps:
        r.problems.append("temp files left by an interrupted install_rbdsr.py run: %s — run install_rbdsr.py "
                          "enable (or disable) to remove them" % ", ".join(ctx.show(t) for t in temps))
    _check_lvm(ctx, r)
    conf = decode(fileops.read_bytes(ctx.abs(MODULES_LOAD))) or ""
    if "rbd" in [ln.strip() for ln in conf.splitlines()]:
        r.ok.append("rbd loads at boot (%s)" % ctx.show(MODULES_LOAD))
    else:
        r.problems.append("rbd is not loaded at boot (%s) — run install_rbdsr.py enable" % ctx.show(MODULES_LOAD))
    state, detail = system.rbd_module_state(ctx.root)
    if state in ("loaded", "loadable"):
        r.ok.append("rbd module %s" % state)
    elif state == "skipped":
        r.notes.append("rbd module check skipped: %s" % detail)
    else:
        r.problems.append("rbd kernel module not available: %s" % detail)
    if ceph:
        _check_ceph(ctx, target, timeout, r)
    return r


def _check_lvm(ctx, r):
    """The udev rule, then LVM's own view of each config dir sm uses."""
    with_rule = udevrule.in_place(ctx.root)
    if with_rule:
        r.ok.append("udev names RBD devices in %s (%s)" % (udevrule.BY_ID, ctx.show(udevrule.RULE)))
    else:
        r.problems.append("%s is missing or not RBDSR's: RBD devices get no %s name — run install_rbdsr.py "
                          "enable" % (ctx.show(udevrule.RULE), udevrule.BY_ID))
    for d in lvmconf.LVM_DIRS:
        ok, problems = lvmconf.check_dir(ctx.abs(d), ctx.show(d), with_rule)
        if ok:
            r.ok.append(ok)
        r.problems.extend(p + " — run install_rbdsr.py enable" for p in problems)


def _check_importable(ctx, lay, r):
    top = ctx.abs(sources.INSTALL_DIR)
    driver = os.path.join(top, "RBDSR.py")
    if not os.path.isfile(driver):
        r.problems.append("%s is missing — run install_rbdsr.py enable" % ctx.show(sources.INSTALL_DIR + "/RBDSR.py"))
        return
    if ctx.live:
        extra = [top] + (["/opt/xensource/sm"] if lay is not None and lay.kind == "flat" else [])
        err = system.run_python(ctx.root, _IMPORT_CODE, extra, timeout=60)
        if err:
            r.problems.append("the RBDSR driver does not import with %s against the installed sm: %s" % (system.dom0_python(ctx.root), err))
        else:
            r.ok.append("the RBDSR driver imports with %s against the installed sm" % system.dom0_python(ctx.root))
        return
    err = hook.compiles(decode(fileops.read_bytes(driver)), driver)
    if err:
        r.problems.append("RBDSR.py does not compile: %s" % err)
    else:
        r.ok.append("RBDSR.py compiles")
        r.notes.append("import of RBDSR.py not tried: not the running system")


def _check_ceph(ctx, target, timeout, r):
    mons = system.ceph_monitors(ctx.root, target)
    if not mons:
        r.problems.append("--ceph: no monitors (give --target, or set mon_host in %s)"
                          % ctx.show("etc/ceph/ceph.conf"))
        return
    reached = 0
    for host, port in mons:
        err = system.tcp_reachable(host, port, timeout)
        if err:
            r.notes.append("monitor %s:%s not reachable: %s" % (host, port, err))
        else:
            reached += 1
            r.ok.append("monitor %s:%s reachable" % (host, port))
    if not reached:
        r.problems.append("no Ceph monitor reachable within %ss" % timeout)


def check(ctx, ceph=False, target=None, timeout=3.0):
    r = collect(ctx, ceph, target, timeout)
    for line in r.ok:
        ctx.say("ok: " + line)
    for line in r.notes:
        ctx.say("note: " + line)
    for line in r.problems:
        ctx.say("MISSING: " + line)
    ctx.say("RBDSR is installed and complete" if not r.problems else "%d problem(s)" % len(r.problems))
    return 0 if not r.problems else 1


def status(ctx, ceph=False, target=None, timeout=3.0):
    m = Manifest.load(ctx.root)
    spec = _spec(ctx)
    ctx.say("RBDSR release:    %s (from %s)" % (sources.read_version(ctx.source), ctx.source))
    ctx.say("RBDSR installed:  %s" % (m.data.get("version", "?") if m.exists else "no"))
    try:
        lay = layoutmod.detect(ctx.root, spec)
        ctx.say("sm shape:         %s — %s (%s)" % (lay.shape.key, lay.description, lay.notes[0]))
        ctx.say("sm version:       %s" % system.sm_package_version(ctx.root))
        ctx.say("product:          %s (platform %s)" % (lay.product_version, lay.platform_version))
    except layoutmod.LayoutError as e:
        ctx.say("sm shape:         unknown (%s)" % e)
    for path, state, sha in fingerprints(ctx.root):
        ctx.say("hook:             %s: %s (sha256 %s)" % (path, state, sha))
    roles = {}
    for entry in m.files.values():
        roles[entry["role"]] = roles.get(entry["role"], 0) + 1
    ctx.say("recorded:         %s" % (", ".join("%d %s" % (n, k) for k, n in sorted(roles.items())) or "nothing"))
    with_rule = udevrule.in_place(ctx.root)
    for d in lvmconf.LVM_DIRS:
        ok, problems = lvmconf.check_dir(ctx.abs(d), ctx.show(d), with_rule)
        ctx.say("LVM:              %s: %s" % (ctx.show(d), "sees RBD devices" if ok else "; ".join(problems)))
    devices = system.mapped_rbd_devices(ctx.root)
    ctx.say("mapped RBD:       %s" % (", ".join(devices) or "none"))
    r = collect(ctx, ceph, target, timeout)
    for line in r.problems:
        ctx.say("MISSING: " + line)
    ctx.say("state:            %s" % ("complete" if not r.problems else "%d problem(s)" % len(r.problems)))
    return 0 if not r.problems else 1


def fingerprints(root="/"):
    """[(path, state, sha256[:12])] of the files the hook goes into; never raises
    (the driver's `version` command prints it on broken hosts too)."""
    out = []
    try:
        m = Manifest.load(root)
        spec = hook.load_spec()
        rels = sorted(rel for rel, e in m.files.items() if e["role"] == "hook")
        if not rels:
            try:
                rels = layoutmod.detect(root, spec).hook_files
            except layoutmod.LayoutError:
                rels = []
        for rel in rels:
            data = fileops.read_bytes(os.path.join(root, rel))
            state = hook.state(decode(data), spec, m.data.get("version"))
            sha = fileops.sha256(data)
            out.append(("/" + rel, state, sha[:12] if sha else "-"))
    except (RBDError, EnvironmentError, ValueError, KeyError) as e:
        out.append(("?", "error: %s" % e, "-"))
    return out
