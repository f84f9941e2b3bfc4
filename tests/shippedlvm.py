"""dom0's /etc/lvm as XCP-ng 8.3 / XenServer 8 ship it, from the test data beside the
repo (../shared/lvm, read-only; never copied into the project).

RBDSR_SHIPPED_LVM names another copy. The VM tier gets one in <results>/shipped-lvm
(tools/run-tests vm copies it there), because the guest sees the repo but not ../shared. Without either, the callers skip
with that reason; with ../shared present but the files missing, they fail.
"""
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "RBDSR_SHIPPED_LVM"
# variant -> subdirectory of the shipped data
VARIANTS = {"ca-410086": "", "pre-ca-410086": "pre-CA-410086"}
FILES = ("lvm.conf", "lvmlocal.conf", "master/lvm.conf")


def source_dir():
    """The shipped-files directory, or None when this checkout has none."""
    env = os.environ.get(ENV)
    if env:
        return env
    if os.environ.get("RBDSR_IN_VM") == "1":  # the VM tier: the host copied them into results
        d = os.path.join(os.environ.get("RBDSR_VM_RESULTS", "/results"), "shipped-lvm")
        return d if os.path.isdir(d) else None
    shared = os.path.join(os.path.dirname(ROOT), "shared")
    return os.path.join(shared, "lvm") if os.path.isdir(shared) else None


def variant_dir(variant):
    """The directory of one variant; AssertionError when the data is there but incomplete."""
    top = source_dir()
    if top is None:
        return None
    d = os.path.join(top, VARIANTS[variant])
    missing = [f for f in FILES if not os.path.isfile(os.path.join(d, f))]
    assert not missing, "shipped LVM test data %s lacks %s" % (d, ", ".join(missing))
    return d


def lay(etc_lvm, variant):
    """Replace <etc_lvm>/{lvm.conf,lvmlocal.conf,master/} by the shipped files of `variant`."""
    src = variant_dir(variant)
    for name in ("lvm.conf", "lvmlocal.conf", "master/lvm.conf", "master/lvmlocal.conf"):
        path = os.path.join(etc_lvm, name)
        if os.path.exists(path):
            os.unlink(path)
    for name in FILES:
        dst = os.path.join(etc_lvm, name)
        if not os.path.isdir(os.path.dirname(dst)):
            os.makedirs(os.path.dirname(dst))
        shutil.copyfile(os.path.join(src, name), dst)
    return etc_lvm
