"""Which sm is installed under a root (its shape, rbdsr.smglue.shapes, and the
real file to hook), found by looking at files (never by importing sm), plus the
product versions from /etc/xensource-inventory."""
import glob
import os
import re

from rbdsr.errors import RBDError
from rbdsr.smglue import shapes

INVENTORY = "etc/xensource-inventory"
_INV_RE = re.compile(r"""^([A-Z0-9_]+)=(['"]?)(.*)\2\s*$""")


class LayoutError(RBDError):
    """No sm shape this installer knows."""


class Layout(object):
    def __init__(self, shape, hook_files, site_packages, inventory, notes=()):
        self.shape = shape
        self.kind = shape.kind            # 'flat' or 'package'
        self.description = shape.description
        self.hook_files = hook_files      # relpaths under root (symlinks followed)
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
        return {"shape": self.shape.key, "kind": self.kind, "hook_files": self.hook_files, "site_packages": self.site_packages,
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
    for pattern in spec.package["site_packages_globs"]:
        found.extend(glob.glob(os.path.join(root, pattern)))
    return sorted(set(p for p in found if os.path.isdir(p)), key=lambda p: (_pyver_key(p), p))


def detect(root, spec):
    """The Layout under root: the sm shape that /opt/xensource/sm/LVMoISCSISR
    leads to and the real file to hook, or LayoutError saying what was found."""
    inventory = read_inventory(root)
    try:
        shape, rel, launcher = shapes.detect_root(root)
        site_dirs = _site_packages_dirs(root, spec)
        notes = []
        if shape.kind == "flat":
            site = _pick_flat_site_packages(root, site_dirs, notes)
        else:
            # symlinks followed as dom0 sees them (an absolute target is under the root)
            hits = [d for d in site_dirs if os.path.isfile(os.path.join(root, shapes.resolve_in_root(
                root, os.path.join(_rel(root, d), shape.package_relpath))))]
            if len(hits) != 1:
                raise LayoutError("%s, but %s is in %d python3 site-packages under %s (%s); expected exactly one"
                                  % (launcher, shape.package_relpath, len(hits), root,
                                     ", ".join(_rel(root, d) for d in hits) or "none"))
            site = _rel(root, hits[0])
            rel = shapes.resolve_in_root(root, os.path.join(site, shape.package_relpath))
    except shapes.ShapeError as e:
        raise LayoutError(str(e))
    if not os.path.isfile(os.path.join(root, rel)):
        raise LayoutError("%s, but /%s is missing (unknown sm shape under %s)" % (launcher, rel, root))
    notes.insert(0, launcher)
    return Layout(shape, [rel], site, inventory, notes)


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
