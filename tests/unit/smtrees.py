"""Synthetic dom0 trees for the installer tests: the project's own fixture
text shaped like sm's LVHDoISCSISR (same anchors and structure, none of sm's
code), for the XCP-ng 8.3 flat layout and the sm package layout.

build_tree(root, layout) lays out a fake dom0; make_release(dir) a minimal
release to install; tree_state(root) fingerprints every path for
before/after comparisons; write_stubs(dir, layout) writes stand-in sm modules
so the hooked class can be executed; run_cli / run_child run the installer
on such a tree."""
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_FLAT_DRIVER = '''#!/usr/bin/python3
#
# RBDSR test fixture: shaped like an sm iSCSI LVHD driver (flat layout).

from sm_typing import override

import SR
import LVHDSR
import BaseISCSI
import SRCommand
import util
import sys

CAPABILITIES = ["SR_PROBE", "SR_UPDATE", "VDI_CREATE", "VDI_DELETE"]

CONFIGURATION = [['target', 'IP address or hostname of the iSCSI target'],
                 ['targetIQN', 'The IQN of the target LUN group'],
                 ['SCSIid', 'The scsi_id of the destination LUN'],
                 ['port', 'iSCSI port (optional, default 3260)']]

DRIVER_INFO = {
    'name': 'LVHD over iSCSI (fixture)',
    'description': 'test fixture',
    'vendor': 'RBDSR tests',
    'copyright': '(C) RBDSR tests',
    'driver_version': '1.0',
    'required_api_version': '1.0',
    'capabilities': CAPABILITIES,
    'configuration': CONFIGURATION
    }


class LVHDoISCSISR(LVHDSR.LVHDSR):
    """LVHD over iSCSI (fixture)"""

    @override
    @staticmethod
    def handles(type) -> bool:
        if __name__ == '__main__':
            name = sys.argv[0]
        else:
            name = __name__
        if name.endswith("LVMoISCSISR"):
            return type == "lvmoiscsi"
        return type == "lvhdoiscsi"

    @override
    def load(self, sr_uuid) -> None:
        if not sr_uuid:
            # probe: no SR yet
            sr_uuid = util.gen_uuid()
        if util.isVDICommand(self.original_srcmd.cmd):
            self.SCSIid = self.dconf['SCSIid']
        else:
            self.create_iscsi_sessions(sr_uuid)
        LVHDSR.LVHDSR.load(self, sr_uuid)

    def create_iscsi_sessions(self, sr_uuid):
        self.iscsi = BaseISCSI.BaseISCSISR(self.original_srcmd, sr_uuid)
        self.iscsiSRs = [self.iscsi]

    @override
    def attach(self, sr_uuid) -> None:
        self.iscsi.attach(sr_uuid)
        LVHDSR.LVHDSR.attach(self, sr_uuid)

    @override
    def detach(self, sr_uuid) -> None:
        LVHDSR.LVHDSR.detach(self, sr_uuid)
        self.iscsi.detach(sr_uuid)


class LVHDoISCSIVDI(LVHDSR.LVHDVDI):
    @override
    def generate_config(self, sr_uuid, vdi_uuid) -> str:
        return self.sr.iscsi.localIQN


if __name__ == '__main__':
    SRCommand.run(LVHDoISCSISR, DRIVER_INFO)
else:
    SR.registerSR(LVHDoISCSISR)
'''

_PKG_DRIVER = '''#!/usr/bin/python3
#
# RBDSR test fixture: shaped like an sm iSCSI LVHD driver (sm package layout).

from sm import SR
from sm.drivers import LVHDSR
from sm import BaseISCSI
from sm.core import util

CAPABILITIES = ["SR_PROBE", "SR_UPDATE", "VDI_CREATE", "VDI_DELETE"]

CONFIGURATION = [['target', 'IP address or hostname of the iSCSI target'],
                 ['port', 'iSCSI port (optional, default 3260)']]

DRIVER_INFO = {
    'name': 'LVHD over iSCSI (fixture)',
    'description': 'test fixture',
    'vendor': 'RBDSR tests',
    'copyright': '(C) RBDSR tests',
    'driver_version': '1.0',
    'required_api_version': '1.0',
    'capabilities': CAPABILITIES,
    'configuration': CONFIGURATION
    }


class LVHDoISCSISR(LVHDSR.LVHDSR):
    """LVHD over iSCSI (fixture)"""

    @staticmethod
    def handles(type):
        return type in ("lvmoiscsi", "lvhdoiscsi")

    def load(self, sr_uuid):
        if not sr_uuid:
            sr_uuid = util.gen_uuid()
        if util.isVDICommand(self.original_srcmd.cmd):
            self.SCSIid = self.dconf['SCSIid']
        else:
            self.create_iscsi_sessions(sr_uuid)
        LVHDSR.LVHDSR.load(self, sr_uuid)

    def create_iscsi_sessions(self, sr_uuid):
        self.iscsi = BaseISCSI.BaseISCSISR(self.original_srcmd, sr_uuid)
        self.iscsiSRs = [self.iscsi]

    def attach(self, sr_uuid):
        self.iscsi.attach(sr_uuid)
        LVHDSR.LVHDSR.attach(self, sr_uuid)


class LVHDoISCSIVDI(LVHDSR.LVHDVDI):
    def generate_config(self, sr_uuid, vdi_uuid):
        return self.sr.iscsi.localIQN
'''

_PKG_SCRIPT = '''#!/usr/bin/python3
# RBDSR test fixture: thin driver script of the sm package layout.
from sm import SRCommand
from sm.drivers.LVHDoISCSISR import LVHDoISCSISR, DRIVER_INFO

if __name__ == '__main__':
    SRCommand.run(LVHDoISCSISR, DRIVER_INFO)
'''

_LVM_CONF = '''# RBDSR test fixture: the shape of an LVM configuration file.
config {
	checks = 1
	abort_on_errors = 0
}

devices {
	# Configuration option devices/dir.
	dir = "/dev"
	scan = [ "/dev" ]
	obtain_device_list_from_udev = 0
	# Configuration option devices/types.
	# List of additional acceptable block device types.
	# Example
	# types = [ "fd", 16 ]
	filter = [ "r|/dev/nbd.*|", "a/.*/" ]
	md_component_detection = 1
	multipath_component_detection = 1
}

allocation {
	maximise_cling = 1
}

global {
	umask = 077
	locking_type = 1
	use_lvmetad = 0
}

activation {
	udev_sync = 1
	volume_list = [ "@%s" ]
}
'''

_INVENTORY = {
    "flat": "PRODUCT_BRAND='XCP-ng'\nPRODUCT_NAME='xenenterprise'\nPRODUCT_VERSION='8.3.0'\n"
            "PLATFORM_NAME='XCP'\nPLATFORM_VERSION='3.4.0'\nINSTALLATION_UUID='0b6f9a5e-fixture'\n",
    "package": "PRODUCT_BRAND='XenServer'\nPRODUCT_VERSION='8.4.0'\nPLATFORM_VERSION='3.5.0'\n"
               "INSTALLATION_UUID='5d1b7c3a-fixture'\n",
}

SITE = "usr/lib/python3.6/site-packages"
FLAT_DRIVER = "opt/xensource/sm/LVHDoISCSISR.py"
PKG_DRIVER = SITE + "/sm/drivers/LVHDoISCSISR.py"
DRIVER = {"flat": FLAT_DRIVER, "package": PKG_DRIVER}


def flat_driver_text():
    return _FLAT_DRIVER


def package_driver_text():
    return _PKG_DRIVER


def _write(root, rel, text, mode=0o644):
    path = os.path.join(root, rel)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def build_tree(root, layout="flat", driver_text=None):
    """A fake dom0 under root with `layout` ('flat' or 'package')."""
    for d in ("var/lib", "usr/lib", "usr/sbin", "etc/modules-load.d", "etc/udev/rules.d", "etc/systemd/system",
              "usr/lib64/python3.6/site-packages", "sys/bus"):
        os.makedirs(os.path.join(root, d))
    _write(root, "etc/xensource-inventory", _INVENTORY[layout])
    _write(root, "etc/lvm/lvm.conf", _LVM_CONF % "XenStorage")
    _write(root, "etc/lvm/master/lvm.conf", _LVM_CONF % "XenStorage-master")
    _write(root, "etc/modules-load.d/other.conf", "# fixture: another package's modules\nloop\n")
    _write(root, SITE + "/README.txt", "fixture site-packages\n")
    if layout == "flat":
        _write(root, FLAT_DRIVER, driver_text if driver_text is not None else _FLAT_DRIVER, 0o755)
        _write(root, "opt/xensource/sm/LVHDSR.py", "# fixture LVHDSR\n", 0o755)
        os.symlink("LVHDoISCSISR.py", os.path.join(root, "opt/xensource/sm/LVMoISCSISR"))
    elif layout == "package":
        for pkg in ("sm", "sm/core", "sm/drivers"):
            _write(root, SITE + "/%s/__init__.py" % pkg, "")
        _write(root, PKG_DRIVER, driver_text if driver_text is not None else _PKG_DRIVER)
        for name in ("LVHDoISCSISR", "LVMoISCSISR"):
            # as sm's Makefile installs them: launchers in libexec, absolute symlinks from /opt
            _write(root, "usr/libexec/sm/drivers/" + name, _PKG_SCRIPT, 0o755)
            os.makedirs(os.path.join(root, "opt/xensource/sm"), exist_ok=True)
            os.symlink("/usr/libexec/sm/drivers/" + name, os.path.join(root, "opt/xensource/sm", name))
    else:
        raise ValueError(layout)
    set_mtimes(root)
    return root


PACKAGE_MTIME = 1700000000  # files a package installed carry its build time, not "now"


def set_mtimes(root, when=PACKAGE_MTIME):
    """Give every file under root the same mtime, as a package install does (the
    manifest records originals' mtimes: two trees built apart must compare equal)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.utime(path, (when, when))


def make_release(dest, version="1.0.0"):
    """A minimal release directory: what install_rbdsr.py --source installs."""
    files = {
        "VERSION": version + "\n",
        "RBDSR.py": "#!/usr/bin/python3\n\"\"\"fixture driver\"\"\"\nDRIVER_VERSION = %r\n" % version,
        "rbdsr/__init__.py": "\"\"\"fixture core\"\"\"\n",
        "rbdsr/smglue/__init__.py": "",
        "rbdsr/smglue/divert.py": "def divert(sr, sr_uuid):\n    return 'diverted'\n",
        "rbdsr/tests/test_x.py": "assert False, 'tests are not installed'\n",
        "rbdsr/test_y.py": "assert False, 'tests are not installed'\n",
        "lvm_helpers/__init__.py": "",
        "lvm_helpers/notes.txt": "not a .py: not installed\n",
        "bin/rbdsr": "#!/usr/bin/python3\nfrom rbdsr.admin.cli import main\nmain()\n",
    }
    for rel, text in files.items():
        _write(dest, rel, text)
    os.chmod(os.path.join(dest, "RBDSR.py"), 0o755)
    shutil.copytree(os.path.join(REPO, "patches"), os.path.join(dest, "patches"))
    return dest


def tree_state(root):
    """{relpath: (kind, content sha256 or link target, mode)} of every path under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path), 0)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", "", stat.S_IMODE(st.st_mode))
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", hashlib.sha256(f.read()).hexdigest(), stat.S_IMODE(st.st_mode))
    return out


def diff_states(a, b):
    """Human list of differences between two tree_state() results."""
    lines = []
    for rel in sorted(set(a) | set(b)):
        if a.get(rel) != b.get(rel):
            lines.append("%s: %r -> %r" % (rel, a.get(rel), b.get(rel)))
    return lines


_STUBS_FLAT = {
    "sm_typing.py": "def override(f):\n    return f\n",
    "SR.py": "def registerSR(cls):\n    pass\n",
    "SRCommand.py": "def run(cls, info):\n    raise SystemExit('not in tests')\n",
    "util.py": ("def gen_uuid():\n    return 'generated-uuid'\n\n"
                "def isVDICommand(cmd):\n    return cmd.startswith('vdi_')\n"),
    "BaseISCSI.py": ("class BaseISCSISR(object):\n    def __init__(self, srcmd, sr_uuid):\n"
                     "        self.sr_uuid = sr_uuid\n"),
    "LVHDSR.py": ("CALLS = []\n\nclass LVHDSR(object):\n    def load(self, sr_uuid):\n"
                  "        CALLS.append(('LVHDSR.load', sr_uuid))\n\n"
                  "class LVHDVDI(object):\n    pass\n"),
}


def write_stubs(dest, layout):
    """Stand-in sm modules (only what the fixture imports) under dest; the
    hooked driver file is placed by the caller. Returns the module name to import."""
    if layout == "flat":
        for name, text in _STUBS_FLAT.items():
            _write(dest, name, text)
        return "LVHDoISCSISR"
    for rel in ("sm/__init__.py", "sm/core/__init__.py", "sm/drivers/__init__.py"):
        _write(dest, rel, "")
    _write(dest, "sm/SR.py", _STUBS_FLAT["SR.py"])
    _write(dest, "sm/BaseISCSI.py", _STUBS_FLAT["BaseISCSI.py"])
    _write(dest, "sm/core/util.py", _STUBS_FLAT["util.py"])
    _write(dest, "sm/drivers/LVHDSR.py", _STUBS_FLAT["LVHDSR.py"])
    return "sm.drivers.LVHDoISCSISR"


def build_tree_from_sm(root, sm_src):
    """A fake dom0 whose sm is a copy of a real sm source tree, mapped to the
    installed layout: xcp-ng 8.3 drivers/*.py -> opt/xensource/sm/ (with the
    LVMoISCSISR symlink); xapi-project master libs/sm ->
    usr/lib/python3.6/site-packages/sm (with the thin driver scripts).
    Returns the layout name and the relpath of the driver the hook goes into."""
    if os.path.isdir(os.path.join(sm_src, "libs", "sm")):
        layout = "package"
    elif os.path.isfile(os.path.join(sm_src, "drivers", "LVHDoISCSISR.py")):
        layout = "flat"
    else:
        raise ValueError("%s is neither an xcp-ng 8.3 nor an xapi-project master sm tree" % sm_src)
    build_tree(root, layout)
    if layout == "flat":
        dest = os.path.join(root, "opt/xensource/sm")
        for name in os.listdir(os.path.join(sm_src, "drivers")):
            if name.endswith(".py"):
                shutil.copy2(os.path.join(sm_src, "drivers", name), os.path.join(dest, name))
        return layout, FLAT_DRIVER
    dest = os.path.join(root, SITE, "sm")
    shutil.rmtree(dest)
    shutil.copytree(os.path.join(sm_src, "libs", "sm"), dest)
    for name in ("LVHDoISCSISR", "LVMoISCSISR"):
        shutil.copy2(os.path.join(sm_src, "drivers", name), os.path.join(root, "usr/libexec/sm/drivers", name))
    return layout, PKG_DRIVER


# -- running the installer on a tree ------------------------------------------

def run_cli(args, root, release, extra=()):
    """(rc, stdout text) of install_rbdsr.py run in this process."""
    from rbdsr.installer import cli
    out = io.StringIO()
    argv = list(args) + ["--root", root, "--source", release] + list(extra)
    if args and args[0] == "uninstall":
        rc = cli.uninstall_main(argv[1:], out=out)
    else:
        rc = cli.install_main(argv, out=out)
    return rc, out.getvalue()


def run_child(args, root, release, env_extra=None, script="install_rbdsr.py", timeout=120):
    """(rc, stdout, stderr) of the real script run by this interpreter."""
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.Popen([sys.executable, os.path.join(REPO, script)] + list(args)
                         + ["--root", root, "--source", release],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def make_env(tmpdir, layout):
    """(root, release) for a fresh tree of `layout`."""
    root = str(tmpdir.join("root"))
    release = str(tmpdir.join("release"))
    build_tree(root, layout)
    make_release(release)
    return root, release


def read(root, rel):
    with open(os.path.join(root, rel), "rb") as f:
        return f.read()
