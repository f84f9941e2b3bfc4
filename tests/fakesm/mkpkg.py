"""Build sm stand-in trees for tests.

`build_flat(dest)` copies the flat (XCP-ng 8.3) tree; `build_pkg(dest)` derives
the package layout of xapi-project/sm master from the same sources by rewriting
the imports (`import util` -> `from sm.core import util`, ...), dropping the
return annotations (master's `def load(self, sr_uuid):` line) and replacing the
`__main__` tail of LVHDoISCSISR with master's registration plus a thin
`drivers/LVMoISCSISR` script. Both return the directory to put on PYTHONPATH
and the path of the script XAPI would execute for an lvmoiscsi SR.
"""
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
FLAT = os.path.join(HERE, "flat")
XAPI = os.path.join(HERE, "xapi")

CORE = ("util", "xs_errors", "scsiutil", "mpath_null")
DRIVERS = ("LVHDSR", "LVHDoISCSISR")
TOP = ("SR", "VDI", "SRCommand", "BaseISCSI", "lvutil", "lvhdutil")


def _package_of(mod):
    if mod in CORE:
        return "sm.core"
    if mod in DRIVERS:
        return "sm.drivers"
    if mod in TOP:
        return "sm"
    return None


def _rewrite(text):
    out = []
    for line in text.splitlines(True):
        m = re.match(r"^import (\w+)\s*$", line)
        if m and _package_of(m.group(1)):
            line = "from %s import %s\n" % (_package_of(m.group(1)), m.group(1))
        m = re.match(r"^from (\w+) import (.*)$", line)
        if m and _package_of(m.group(1)):
            line = "from %s.%s import %s\n" % (_package_of(m.group(1)), m.group(1), m.group(2))
        line = re.sub(r"\) -> [\w.']+:", "):", line)
        out.append(line)
    text = "".join(out)
    text = text.replace('__import__("mpath_null")',
                        '__import__("sm.core.mpath_null", fromlist=[None])')
    tail = re.compile(r"if __name__ == '__main__':\n    SRCommand\.run\((\w+), DRIVER_INFO\)\n"
                      r"else:\n    SR\.registerSR\((\w+)\)\n")
    text = tail.sub(lambda m: "# SR registration at import\nSR.registerSR(%s)\n" % m.group(2), text)
    return text


def build_flat(dest):
    """Copy the flat tree to dest; returns (pythonpath, driver_script)."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    shutil.copytree(FLAT, dest, symlinks=True)
    return dest, os.path.join(dest, "LVMoISCSISR")


def build_pkg(dest):
    """Build the package layout under dest; returns (pythonpath, driver_script)."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    libs = os.path.join(dest, "site-packages")
    for sub in ("sm", "sm/core", "sm/drivers"):
        os.makedirs(os.path.join(libs, sub))
        with open(os.path.join(libs, sub, "__init__.py"), "w") as f:
            f.write("")
    for name in os.listdir(FLAT):
        src = os.path.join(FLAT, name)
        if os.path.islink(src) or not name.endswith(".py"):
            continue
        mod = name[:-3]
        pkg = _package_of(mod)
        if pkg is None:
            continue
        with open(src) as f:
            text = _rewrite(f.read())
        with open(os.path.join(libs, *pkg.split(".") + [name]), "w") as f:
            f.write(text)
    shutil.copy(os.path.join(FLAT, "XE_SR_ERRORCODES.xml"), os.path.join(libs, "sm", "core"))
    drivers = os.path.join(dest, "drivers")
    os.makedirs(drivers)
    script = os.path.join(drivers, "LVMoISCSISR")
    with open(script, "w") as f:
        f.write("#!/usr/bin/python3\n"
                "# LVHDoISCSISR: thin driver script, as in xapi-project/sm master\n"
                "from sm import SRCommand\n"
                "from sm.drivers.LVHDoISCSISR import LVHDoISCSISR, DRIVER_INFO\n\n"
                "if __name__ == '__main__':\n"
                "    SRCommand.run(LVHDoISCSISR, DRIVER_INFO)\n")
    os.chmod(script, 0o755)
    return libs, script
