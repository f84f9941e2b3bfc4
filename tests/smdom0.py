"""Real sm trees laid out as a dom0 has them, for every tier that runs real sm.

The trees are test data beside the repository (../shared/sm, read-only; README
there), or the paths in SM_SRC (os.pathsep-separated). Each is laid out under a
root exactly as its package installs it:

- flat trees (xcpng-8.3, xcpng-8.3-2025, xs8): /opt/xensource/sm from the
  tree's manifest (`<tree>.manifest`: files and `name -> target` symlinks,
  sources in drivers/, drivers/plugins/, multipath/), sm_typing.py into dom0
  python's site-packages (sm_typing's Makefile);
- the package tree (xapi-master, no manifest shipped): what its Makefile's
  install target does -- libs/sm into site-packages, the error table into
  /usr/share/sm, the compatibility modules into /opt/xensource/sm, each
  driver launcher into /usr/libexec/sm/drivers with an absolute symlink from
  /opt/xensource/sm, the utils (cleanup, ...) into /usr/libexec/sm with
  `<name>.py` symlinks.

`/etc/lvm` comes from ../shared/lvm (dom0's files as shipped, CA-410086 or
not). Nothing here imports sm; nothing of sm is copied into the repository.
"""
import os
import re
import shutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RBDSR_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
SITE = "usr/lib/python3.6/site-packages"   # dom0 python3's site-packages
OPT_SM = "opt/xensource/sm"

# tree -> the sm shape the driver must find there (rbdsr.smglue.shapes)
KNOWN = {"xcpng-8.3": "lvm", "xcpng-8.3-2025": "lvhd", "xs8": "lvhd", "xapi-master": "package"}
# today's XCP-ng 8.3 first: it gets the full matrix where time is short
ORDER = ("xcpng-8.3", "xs8", "xcpng-8.3-2025", "xapi-master")


class TreeError(AssertionError):
    """An sm tree that is there but cannot be used: a test failure, never a skip."""


class SMSource(object):
    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.package = os.path.isdir(os.path.join(path, "libs", "sm"))
        manifest = path.rstrip("/") + ".manifest"
        self.manifest = manifest if os.path.isfile(manifest) else None
        if not self.package and not os.path.isdir(os.path.join(path, "drivers")):
            raise TreeError("%s is not an sm source tree (no drivers/ nor libs/sm)" % path)
        if not self.package and self.manifest is None:
            raise TreeError("%s: flat sm tree without its manifest %s" % (path, manifest))

    @property
    def shape(self):
        return KNOWN.get(self.name)

    def __repr__(self):
        return "SMSource(%s)" % self.name


def shared_sm_dir():
    return os.path.join(SHARED, "sm")


def sources():
    """The sm trees to test: SM_SRC when set, else every tree in ../shared/sm
    (today's XCP-ng 8.3 first). [] when neither exists (a clone elsewhere)."""
    env = [s for s in os.environ.get("SM_SRC", "").split(os.pathsep) if s]
    if env:
        return [SMSource(os.path.basename(p.rstrip("/")), p) for p in env]
    base = shared_sm_dir()
    if not os.path.isdir(base):
        return []
    found = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))
    unknown = [n for n in found if n not in KNOWN]
    if unknown:
        raise TreeError("unknown sm trees in %s: %s (add them to tests/smdom0.py KNOWN)" % (base, unknown))
    missing = [n for n in ORDER if n not in found]
    if missing:
        raise TreeError("%s lacks sm trees %s" % (base, missing))
    return [SMSource(n, os.path.join(base, n)) for n in ORDER]


def source(name):
    for s in sources():
        if s.name == name:
            return s
    raise TreeError("sm tree %s is not available (SM_SRC or %s)" % (name, shared_sm_dir()))


def why_none():
    return ("no sm trees: SM_SRC is not set and %s does not exist (a clone without ../shared)"
            % shared_sm_dir())


# -- laying a tree out under a root -------------------------------------------------

def _copy(src, dst, mode=None):
    d = os.path.dirname(dst)
    if not os.path.isdir(d):
        os.makedirs(d)
    shutil.copy2(src, dst)
    if mode is not None:
        os.chmod(dst, mode)


def _link(target, path):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)


def manifest_entries(manifest):
    """[(relpath under /, symlink target or None)] of a `<tree>.manifest`."""
    out = []
    with open(manifest) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(/\S+) -> (\S+)$", line)
            if m:
                out.append((m.group(1).lstrip("/"), m.group(2)))
                continue
            out.append((line.split()[0].lstrip("/"), None))  # "path" or "path file (note)"
    return out


def _flat_source(src, rel):
    name = rel[len(OPT_SM) + 1:]
    for cand in (os.path.join(src.path, "drivers", name), os.path.join(src.path, "multipath", name)):
        if os.path.isfile(cand):
            return cand
    raise TreeError("%s: no source for /%s in %s" % (src.manifest, rel, src.path))


def _lay_flat(src, root, site):
    for rel, target in manifest_entries(src.manifest):
        if not rel.startswith(OPT_SM + "/"):
            raise TreeError("%s: /%s is outside /%s" % (src.manifest, rel, OPT_SM))
        if target is not None:
            _link(target, os.path.join(root, rel))
        else:
            _copy(_flat_source(src, rel), os.path.join(root, rel), 0o755)
    typing = os.path.join(src.path, "sm_typing", "__init__.py")
    if os.path.isfile(typing):
        _copy(typing, os.path.join(root, site, "sm_typing.py"), 0o644)


def _make_vars(makefile):
    """`VAR := a` / `VAR += b` lists of an sm Makefile."""
    out = {}
    with open(makefile) as f:
        for line in f:
            m = re.match(r"^(\w+)\s*(:=|\+=)\s*(.*?)\s*$", line)
            if m:
                vals = m.group(3).split()
                out[m.group(1)] = (out.get(m.group(1), []) if m.group(2) == "+=" else []) + vals
    return out


def _lay_package(src, root, site):
    v = _make_vars(os.path.join(src.path, "Makefile"))
    site = os.path.join(root, site)
    shutil.copytree(os.path.join(src.path, "libs", "sm"), os.path.join(site, "sm"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in v.get("SM_XML", ["XE_SR_ERRORCODES"]):
        _copy(os.path.join(src.path, "libs", "sm", "core", name + ".xml"),
              os.path.join(root, "usr/share/sm", name + ".xml"), 0o644)
    for name in v["SM_COMPAT_LIBS"]:
        _copy(os.path.join(src.path, "compat-libs", name + ".py"), os.path.join(root, OPT_SM, name + ".py"), 0o755)
    for name in v["SM_DRIVERS"]:
        _copy(os.path.join(src.path, "drivers", name), os.path.join(root, "usr/libexec/sm/drivers", name), 0o755)
        _link("/usr/libexec/sm/drivers/" + name, os.path.join(root, OPT_SM, name))
    for name in v.get("SM_LIBEXEC_PY_CMDS", []):
        _copy(os.path.join(src.path, "utils", name), os.path.join(root, "usr/libexec/sm", name), 0o755)
        _link("/usr/libexec/sm/" + name, os.path.join(root, OPT_SM, name + ".py"))
    typing = os.path.join(src.path, "sm_typing", "__init__.py")
    if os.path.isfile(typing):
        _copy(typing, os.path.join(site, "sm_typing.py"), 0o644)


INVENTORY = {
    "lvm": "PRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\nPLATFORM_VERSION='3.4.0'\n",
    "lvhd": "PRODUCT_BRAND='XenServer'\nPRODUCT_VERSION='8.4.0'\nPLATFORM_VERSION='3.4.0'\n",
    "package": "PRODUCT_BRAND='XenServer'\nPRODUCT_VERSION='9.0.0'\nPLATFORM_VERSION='3.5.0'\n",
}


SHIPPED_LVM = "CA-410086"   # ../shared/lvm itself; older variants are its subdirectories


def lay_lvm(root, variant=SHIPPED_LVM):
    """dom0's /etc/lvm as shipped (../shared/lvm): 'CA-410086' (today) or 'pre-CA-410086'."""
    base = os.path.join(SHARED, "lvm")
    if variant != SHIPPED_LVM:
        base = os.path.join(base, variant)
    if not os.path.isfile(os.path.join(base, "lvm.conf")):
        raise TreeError("dom0's LVM configuration is not in %s" % base)
    for rel in ("lvm.conf", "lvmlocal.conf", "master/lvm.conf", "master/lvmlocal.conf"):
        if os.path.isfile(os.path.join(base, rel)):
            _copy(os.path.join(base, rel), os.path.join(root, "etc/lvm", rel), 0o644)


def lay_sm(src, root, site=SITE):
    """`src`'s sm under `root` as its package installs it: flat trees from their
    manifest, the sm package as its Makefile installs it (python packages under `site`,
    relative to root)."""
    (_lay_package if src.package else _lay_flat)(src, root, site)


def sm_tops(src, site=SITE):
    """The top-level paths (relative to /) that lay_sm writes."""
    tops = [OPT_SM, os.path.join(site, "sm_typing.py")]
    if src.package:
        tops += [os.path.join(site, "sm"), "usr/share/sm", "usr/libexec/sm"]
    return tops


def lay_out(src, root, lvm=SHIPPED_LVM):
    """A stand-in dom0 under `root` with `src`'s sm installed as its package
    installs it, dom0's /etc/lvm and an inventory. Returns root."""
    lay_sm(src, root)
    if lvm:
        lay_lvm(root, lvm)
    inv = os.path.join(root, "etc/xensource-inventory")
    if not os.path.exists(inv):
        d = os.path.dirname(inv)
        if not os.path.isdir(d):
            os.makedirs(d)
        with open(inv, "w") as f:
            f.write(INVENTORY.get(src.shape or "lvhd", INVENTORY["lvhd"]))
    for d in ("etc/modules-load.d", "var/lib"):
        if not os.path.isdir(os.path.join(root, d)):
            os.makedirs(os.path.join(root, d))
    return root
