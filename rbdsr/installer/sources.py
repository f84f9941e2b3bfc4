"""What a release installs: RBDSR.py, VERSION, the install/uninstall scripts,
patches/ and every .py of the rbdsr and lvm_helpers packages (tests excluded),
all under /usr/lib/rbdsr; and the admin command /usr/sbin/rbdsr (COMMANDS)."""
import os

from rbdsr.errors import RBDError

INSTALL_DIR = "usr/lib/rbdsr"
# dom0's python3 purelib (XCP-ng 8.3 / XenServer 8: python 3.6): where the rbdsr RPM
# puts rbdsr.pth, and where the flat layout's rbdsr.pth goes
DOM0_SITE_PACKAGES = "usr/lib/python3.6/site-packages"
PACKAGES = ("rbdsr", "lvm_helpers")
SCRIPTS = ("install_rbdsr.py", "uninstall_rbdsr.py")  # installed too: check/uninstall without the release dir
# Commands put on dom0's PATH: (file in the release, where it is installed).
COMMANDS = (("bin/rbdsr", "usr/sbin/rbdsr"),)
COMMAND_MARK = b"from rbdsr.admin.cli import main"  # how uninstall knows our command without a record
REQUIRED = ("RBDSR.py", "VERSION", "rbdsr/__init__.py", "rbdsr/smglue/divert.py",
            "patches/anchors.json") + tuple(src for src, _dest in COMMANDS)


def default_source():
    """The release directory: the one holding the rbdsr package."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _skip(name):
    return name in ("tests", "__pycache__") or name.startswith(".")


def collect(source):
    """Sorted relpaths (relative to source) of the files to install."""
    missing = [r for r in REQUIRED if not os.path.isfile(os.path.join(source, r))]
    if missing:
        raise RBDError("the release directory %s is incomplete: missing %s" % (source, ", ".join(missing)))
    files = ["RBDSR.py", "VERSION"] + [s for s in SCRIPTS if os.path.isfile(os.path.join(source, s))]
    # the commands' sources too: a packaged install enables from /usr/lib/rbdsr itself
    files += [src for src, _dest in COMMANDS]
    for name in sorted(os.listdir(os.path.join(source, "patches"))):
        if name.endswith((".json", ".in")):
            files.append("patches/" + name)
    for pkg in PACKAGES:
        top = os.path.join(source, pkg)
        if not os.path.isdir(top):
            raise RBDError("the release directory %s is incomplete: missing %s/" % (source, pkg))
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not _skip(d))
            for f in sorted(filenames):
                if f.endswith(".py") and not f.startswith("test_") and not _skip(f):
                    files.append(os.path.relpath(os.path.join(dirpath, f), source))
    return files


def read_version(source):
    try:
        with open(os.path.join(source, "VERSION")) as f:
            return f.read().strip()
    except (IOError, OSError):
        return "unknown"
