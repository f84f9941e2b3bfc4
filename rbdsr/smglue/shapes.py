"""The sm driver shapes RBDSR knows, and how to tell which one a dom0 runs.

XAPI runs /opt/xensource/sm/LVMoISCSISR for an lvmoiscsi SR; what that file
leads to is the shape:

- 'lvm'     XCP-ng 8.3 today (sm 3.2.12-17.2 and later): symlink to LVMoISCSISR.py,
            class LVMoISCSISR(LVMSR.LVMSR), VDI LVMoISCSIVDI(LVMSR.LVMVDI), lvmcowutil;
- 'lvhd'    XenServer 8 and XCP-ng 8.3 before 2026: symlink to LVHDoISCSISR.py,
            class LVHDoISCSISR(LVHDSR.LVHDSR), VDI LVHDoISCSIVDI(LVHDSR.LVHDVDI), lvhdutil;
- 'package' xapi-project/sm 4.x (XenServer 9 line): a launcher importing
            sm.drivers.LVHDoISCSISR from the `sm` package.

This module is the one home of those facts. It imports no sm module: the
installer reads files under a root, the shim (the running driver) asks Python
where modules are.
"""
import importlib.util
import os
import re
import sys

LAUNCHER = "opt/xensource/sm/LVMoISCSISR"   # what XAPI executes, relative to the root
FLAT_DIR = "/" + LAUNCHER.rsplit("/", 1)[0]

_FLAT_MODULES = ("SR", "VDI", "SRCommand", "util", "xs_errors", "scsiutil", "lvutil")
_PKG_MODULES = {"SR": "sm.SR", "VDI": "sm.VDI", "SRCommand": "sm.SRCommand", "lvutil": "sm.lvutil",
                "util": "sm.core.util", "xs_errors": "sm.core.xs_errors", "scsiutil": "sm.core.scsiutil"}


class ShapeError(Exception):
    """The sm found is none of the shapes RBDSR knows."""


class Shape(object):
    """One sm driver shape: where its iSCSI LVM driver lives and what it is called."""

    def __init__(self, key, description, kind, iscsi_module, iscsi_class, iscsi_vdi,
                 lvm_module, lvm_class, lvm_vdi, cowutil, modules):
        self.key = key
        self.description = description
        self.kind = kind                    # 'flat' (modules in FLAT_DIR) or 'package'
        self.iscsi_module = iscsi_module    # import name of the hooked module
        self.iscsi_class = iscsi_class
        self.iscsi_vdi = iscsi_vdi
        self.lvm_module = lvm_module        # its LVM base: the module and its SR / VDI classes
        self.lvm_class = lvm_class
        self.lvm_vdi = lvm_vdi
        self.cowutil = cowutil              # lvhdutil / lvmcowutil
        self.modules = modules              # our neutral name -> import name

    @property
    def hook_basename(self):
        return self.iscsi_module.rsplit(".", 1)[-1] + ".py"

    @property
    def package_relpath(self):
        """The hooked file below site-packages (package shape)."""
        return self.iscsi_module.replace(".", "/") + ".py"

    def __repr__(self):
        return "Shape(%s)" % self.key


def _flat(key, description, prefix, base):
    mods = dict((m, m) for m in _FLAT_MODULES)
    cow = "lvmcowutil" if base == "LVMSR" else "lvhdutil"
    mods.update({"cowutil": cow, "LVM": base, "ISCSI": prefix + "oISCSISR"})
    return Shape(key, description, "flat", prefix + "oISCSISR", prefix + "oISCSISR", prefix + "oISCSIVDI",
                 base, base, prefix + "VDI", cow, mods)


def _package():
    mods = dict(_PKG_MODULES)
    mods.update({"cowutil": "sm.lvhdutil", "LVM": "sm.drivers.LVHDSR", "ISCSI": "sm.drivers.LVHDoISCSISR"})
    return Shape("package", "sm package (xapi-project/sm 4.x, XenServer 9 line)", "package",
                 "sm.drivers.LVHDoISCSISR", "LVHDoISCSISR", "LVHDoISCSIVDI",
                 "sm.drivers.LVHDSR", "LVHDSR", "LVHDVDI", "sm.lvhdutil", mods)


LVM = _flat("lvm", "XCP-ng 8.3 flat sm with LVM*SR names (sm 3.2.12-17.2 and later)", "LVM", "LVMSR")
LVHD = _flat("lvhd", "flat sm with LVHD*SR names (XenServer 8, XCP-ng 8.3 before 2026)", "LVHD", "LVHDSR")
PACKAGE = _package()
SHAPES = (LVM, LVHD, PACKAGE)
_BY_FLAT_FILE = dict((s.hook_basename, s) for s in SHAPES if s.kind == "flat")
# the launcher's import line: `from sm.drivers.LVHDoISCSISR import LVHDoISCSISR, DRIVER_INFO`
_LAUNCHER_IMPORT = re.compile(r"^from\s+([\w.]+)\s+import\s+(\w+)\s*,\s*DRIVER_INFO\s*$", re.M)


def by_key(key):
    for s in SHAPES:
        if s.key == key:
            return s
    raise ShapeError("unknown sm shape %r" % key)


# -- on a root (the installer): follow the launcher ---------------------------

def _under(root, path):
    """An absolute path inside a dom0 root: symlink targets are read as dom0 sees them."""
    return os.path.join(root, path.lstrip("/"))


def resolve_in_root(root, rel, max_hops=40):
    """Follow symlinks of `rel` as dom0 would, staying under `root`; the final
    relative path of a regular file (or of whatever is missing)."""
    return symlink_chain(root, rel, max_hops)[-1]


def symlink_chain(root, rel, max_hops=40):
    """[rel, first target, ..., final path] of a chain of symlinks under `root`."""
    rel = rel.lstrip("/")
    chain = [rel]
    for _ in range(max_hops):
        path = _under(root, rel)
        if not os.path.islink(path):
            return chain
        target = os.readlink(path)
        if os.path.isabs(target):
            rel = os.path.normpath(target).lstrip("/")
        else:
            rel = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if rel.startswith(".."):
            raise ShapeError("/%s points outside the root" % rel)
        chain.append(rel)
    raise ShapeError("/%s: too many levels of symlinks" % rel)


def detect_root(root):
    """(shape, hook_rel, what) of the sm under `root`: its shape, the real file
    to hook for a flat shape (None for the package: it lives in site-packages)
    and a phrase saying what the launcher is. ShapeError naming what was found
    otherwise."""
    path = _under(root, LAUNCHER)
    if not os.path.lexists(path):
        raise ShapeError("/%s is missing: no sm storage manager under %s" % (LAUNCHER, root))
    chain = symlink_chain(root, LAUNCHER)
    rel = chain[-1]
    what = "/%s" % LAUNCHER + "".join(" -> /%s" % r for r in chain[1:])
    if not os.path.isfile(_under(root, rel)):
        raise ShapeError("%s: not a file (unknown sm shape)" % what)
    # the flat driver's name in /opt/xensource/sm decides; that name may itself be a
    # symlink to the real file elsewhere (which is then the file to hook)
    named = [r for r in chain[1:] if os.path.basename(r) in _BY_FLAT_FILE]
    if named:
        if os.path.dirname(named[0]) != os.path.dirname(LAUNCHER):
            raise ShapeError("%s: outside %s (unknown sm shape)" % (what, FLAT_DIR))
        return _BY_FLAT_FILE[os.path.basename(named[0])], rel, what
    try:
        with open(_under(root, rel)) as f:
            text = f.read(65536)
    except (IOError, OSError, UnicodeDecodeError) as e:
        raise ShapeError("%s cannot be read: %s" % (what, e))
    found = _LAUNCHER_IMPORT.findall(text)
    for module, cls in found:
        for shape in SHAPES:
            if shape.kind == "package" and (module, cls) == (shape.iscsi_module, shape.iscsi_class):
                return shape, None, "%s imports %s.%s" % (what, module, cls)
    raise ShapeError("%s is a file that imports %s; expected a symlink to %s in %s or a launcher of %s "
                     "(unknown sm shape)" % (what, ", ".join("%s.%s" % m for m in found) or "no sm driver",
                                            " or ".join(sorted(_BY_FLAT_FILE)), FLAT_DIR,
                                            PACKAGE.iscsi_module))


# -- in the running driver: ask Python -----------------------------------------

def _find_spec(name):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None


def _main_is(shape):
    """XAPI ran the flat driver itself: __main__ is that module (a second copy
    of it is imported by name later)."""
    main = sys.modules.get("__main__")
    cls = getattr(main, shape.iscsi_class, None) if shape.kind == "flat" else None
    # defined there, not imported (the package shape's launcher imports its class)
    return isinstance(cls, type) and cls.__module__ == "__main__"


def running():
    """The shape of the sm this process runs, or None when there is no sm."""
    for shape in SHAPES:
        if shape.iscsi_module in sys.modules or _main_is(shape):
            return shape
    for shape in SHAPES:
        if _find_spec(shape.iscsi_module) is not None:
            return shape
    for shape in SHAPES:
        if shape.kind == "flat" and os.path.isfile(os.path.join(FLAT_DIR, shape.hook_basename)):
            return shape
    return None
