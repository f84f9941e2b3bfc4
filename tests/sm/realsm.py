"""A real sm source tree (SM_SRC) laid out as dom0 has it, for the driver to
run in: XCP-ng 8.3 (flat modules from drivers/ plus sm_typing, LVMoISCSISR
symlink) or xapi-project/sm master (the `sm` package from libs/ plus the thin
drivers/LVMoISCSISR script). The RBDSR hook goes in with the installer's code.

Environment tweaks (the only differences from dom0), kept in tests/sm/stubs:
XenAPI is the JSON-backed stub of tests/fakesm/xapi; `fairlock` (a systemd
socket service on dom0) is a no-op lock; `syslog` (installed by stubs/
sitecustomize.py, as it is built into some Pythons) writes sm's SMlog lines to
the file in env SMLOG; `bitarray` (CBT only) is absent; the package layout's
error table path points at the tree's copy instead of /usr/share/sm.
"""
import glob
import os
import shutil

import driverharness as h

STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs")


def sm_sources():
    """The trees named in SM_SRC (os.pathsep-separated), each with its layout."""
    out = []
    for src in [s for s in os.environ.get("SM_SRC", "").split(os.pathsep) if s]:
        if os.path.isfile(os.path.join(src, "libs", "sm", "drivers", "LVHDoISCSISR.py")):
            out.append((src, "package"))
        elif os.path.isfile(os.path.join(src, "drivers", "LVHDoISCSISR.py")):
            out.append((src, "flat"))
        else:
            raise AssertionError("SM_SRC entry %s is not an sm source tree (no LVHDoISCSISR.py)" % src)
    return out


def _copy_flat(src, dest):
    os.makedirs(dest)
    for path in glob.glob(os.path.join(src, "drivers", "*")):
        if os.path.isfile(path):
            shutil.copy2(path, dest)
    if os.path.isdir(os.path.join(src, "sm_typing")):
        shutil.copytree(os.path.join(src, "sm_typing"), os.path.join(dest, "sm_typing"))
    os.symlink("LVHDoISCSISR.py", os.path.join(dest, "LVMoISCSISR"))
    return dest, os.path.join(dest, "LVMoISCSISR")


def _copy_package(src, dest):
    libs = os.path.join(dest, "site-packages")
    shutil.copytree(os.path.join(src, "libs", "sm"), os.path.join(libs, "sm"))
    if os.path.isdir(os.path.join(src, "sm_typing")):
        shutil.copytree(os.path.join(src, "sm_typing"), os.path.join(libs, "sm_typing"))
    drivers = os.path.join(dest, "drivers")
    os.makedirs(drivers)
    shutil.copy2(os.path.join(src, "drivers", "LVHDoISCSISR"), os.path.join(drivers, "LVMoISCSISR"))
    # sm's error table lives in /usr/share/sm on dom0; point xs_errors at the tree's copy
    # (sm's own unit tests patch the same constant)
    path = os.path.join(libs, "sm", "core", "xs_errors.py")
    with open(path) as f:
        text = f.read()
    table = os.path.join(libs, "sm", "core", "XE_SR_ERRORCODES.xml")
    text = text.replace("XML_DEFS = '/usr/share/sm/XE_SR_ERRORCODES.xml'", "XML_DEFS = %r" % table)
    with open(path, "w") as f:
        f.write(text)
    return libs, os.path.join(drivers, "LVMoISCSISR")


class RealSMTree(h.SMTree):
    def __init__(self, workdir, sm_src, layout, hook=True):
        self.sm_src = sm_src
        h.SMTree.__init__(self, workdir, layout, sm_src=sm_src, hook=hook)
        self.extra_path = [STUBS, h.XAPI_STUB]

    @staticmethod
    def _real_tree(sm_src, tree, layout):
        if os.path.exists(tree):
            shutil.rmtree(tree)
        return _copy_flat(sm_src, tree) if layout == "flat" else _copy_package(sm_src, tree)

    def env(self, extra=None):
        env = h.SMTree.env(self, extra)
        # the stubs must shadow the standard syslog module
        env["PYTHONPATH"] = os.pathsep.join([STUBS, env["PYTHONPATH"]])
        return env
