"""Which sm is installed under a root: the XCP-ng 8.3 flat modules or the sm
python package, found by looking at files (never by importing sm), plus the
product versions from /etc/xensource-inventory."""
import glob
import os
import re

from rbdsr.errors import RBDError

INVENTORY = "etc/xensource-inventory"
_INV_RE = re.compile(r"""^([A-Z0-9_]+)=(['"]?)(.*)\2\s*$""")


class LayoutError(RBDError):
    """No sm layout this installer knows (or more than one)."""


class Layout(object):
    def __init__(self, kind, description, hook_files, site_packages, inventory, notes=()):
        self.kind = kind                  # 'flat' or 'package'
        self.description = description
        self.hook_files = hook_files      # relpaths under root
        self.site_packages = site_packages  # relpath of dom0 python3 site-packages (may not exist yet)
        self.inventory = inventory
        self.notes = list(notes)

    @property
    def product_version(self):
        return self.inventory.get("PRODUCT_VERSION", "unknown")

    @property
    def platform_version(self):
        return self.inventory.get("PLATFORM_VERSION", "unknown")

    def as_dict(self):
        return {"kind": self.kind, "hook_files": self.hook_files, "site_packages": self.site_packages,
                "product_version": self.product_version, "platform_version": self.platform_version}


def read_inventory(root):
    """KEY='value' lines of the inventory ({} when absent)."""
    out = {}
    try:
        with open(os.path.join(root, INVENTORY)) as f:
            for line in f:
                m = _INV_RE.match(line.strip())
                if m:
                    out[m.group(1)] = m.group(3)
    except (IOError, OSError):
        pass
    return out


def _rel(root, path):
    return os.path.relpath(path, root)


def _pyver_key(path):
    m = re.search(r"python3\.(\d+)", path)
    return int(m.group(1)) if m else -1


def _site_packages_dirs(root, spec):
    found = []
    for pattern in spec.layouts["package"]["site_packages_globs"]:
        found.extend(glob.glob(os.path.join(root, pattern)))
    return sorted(set(p for p in found if os.path.isdir(p)), key=lambda p: (_pyver_key(p), p))


def detect(root, spec):
    """The Layout under root, or LayoutError saying what was expected and where."""
    inventory = read_inventory(root)
    flat = spec.layouts["flat"]
    pkg = spec.layouts["package"]
    flat_files = [f for f in flat["hook_files"] if os.path.isfile(os.path.join(root, f))]
    site_dirs = _site_packages_dirs(root, spec)
    pkg_hits = []
    for d in site_dirs:
        if all(os.path.isfile(os.path.join(d, f)) for f in pkg["hook_files"]):
            pkg_hits.append(d)
    where = "under %s" % root
    expected = ("expected %s (XCP-ng 8.3) or <site-packages>/%s (sm package) %s"
                % (", ".join("/" + f for f in flat["hook_files"]), ", ".join(pkg["hook_files"]), where))
    if flat_files and pkg_hits:
        raise LayoutError("both the flat sm modules and the sm package are present (%s and %s); "
                          "refusing to guess which one XAPI runs" % (flat_files[0], _rel(root, pkg_hits[0])))
    if len(pkg_hits) > 1:
        raise LayoutError("the sm package is installed more than once: %s"
                          % ", ".join(_rel(root, d) for d in pkg_hits))
    if flat_files:
        if len(flat_files) != len(flat["hook_files"]):
            raise LayoutError("incomplete flat sm layout: " + expected)
        _check_symlinks(root, flat.get("symlinks", {}))
        notes = []
        site = _pick_flat_site_packages(root, site_dirs, notes)
        return Layout("flat", flat["description"], list(flat["hook_files"]), site, inventory, notes)
    if pkg_hits:
        d = pkg_hits[0]
        files = [_rel(root, os.path.join(d, f)) for f in pkg["hook_files"]]
        return Layout("package", pkg["description"], files, _rel(root, d), inventory)
    raise LayoutError("unknown sm layout: " + expected)


def _check_symlinks(root, links):
    """The flat layout's LVMoISCSISR must be the symlink to LVHDoISCSISR.py:
    a separate copy would serve lvmoiscsi SRs without the hook."""
    for rel, target in sorted(links.items()):
        path = os.path.join(root, rel)
        if not os.path.islink(path):
            what = "missing" if not os.path.lexists(path) else "not a symlink"
            raise LayoutError("/%s is %s; expected a symlink to %s (unknown sm layout under %s)"
                              % (rel, what, target, root))
        actual = os.readlink(path)
        if os.path.normpath(os.path.join(os.path.dirname(rel), actual)) != \
                os.path.normpath(os.path.join(os.path.dirname(rel), target)):
            raise LayoutError("/%s points to %s; expected %s (unknown sm layout under %s)"
                              % (rel, actual, target, root))


def _pick_flat_site_packages(root, site_dirs, notes):
    """Where rbdsr.pth goes on the flat layout: the python3 site-packages under
    usr/lib (purelib), the newest python3 when several exist; created as
    usr/lib/python3.6/site-packages (XCP-ng 8.3's python) when there is none."""
    lib = [d for d in site_dirs if _rel(root, d).startswith("usr/lib/")]
    if lib:
        if len(lib) > 1:
            notes.append("several python3 site-packages; using %s" % _rel(root, lib[-1]))
        return _rel(root, lib[-1])
    notes.append("no python3 site-packages under usr/lib; usr/lib/python3.6/site-packages will be created")
    return "usr/lib/python3.6/site-packages"
