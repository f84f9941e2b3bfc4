"""Make sure Debian's Ceph packages are present (installs them when allowed)."""
import importlib
import os
import shutil
import subprocess

PACKAGES = ["ceph-mon", "ceph-mgr", "ceph-osd", "ceph-common", "python3-rados", "python3-rbd"]
BINARIES = ["ceph-mon", "ceph-mgr", "ceph-osd", "ceph"]
MODULES = ["rados", "rbd"]


def missing():
    """Names of missing binaries and Python modules."""
    gone = [b for b in BINARIES if shutil.which(b) is None]
    for mod in MODULES:
        try:
            importlib.import_module(mod)
        except ImportError:
            gone.append("python module %s" % mod)
    return gone


def _apt(args, timeout):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.call(["apt-get"] + args, env=env, timeout=timeout,
                           stdin=subprocess.DEVNULL)


def ensure(allow_install, timeout=1200):
    gone = missing()
    if not gone:
        return
    if not allow_install:
        raise RuntimeError("Ceph packages missing (%s); install them with: apt-get install -y %s"
                           % (", ".join(gone), " ".join(PACKAGES)))
    if os.geteuid() != 0:
        raise RuntimeError("Ceph packages missing (%s) and not root: run apt-get install -y %s"
                           % (", ".join(gone), " ".join(PACKAGES)))
    if _apt(["install", "-y"] + PACKAGES, timeout) != 0:
        # a fresh machine may have no package lists yet
        _apt(["update"], timeout)
        if _apt(["install", "-y"] + PACKAGES, timeout) != 0:
            raise RuntimeError("apt-get install of %s failed" % " ".join(PACKAGES))
    importlib.invalidate_caches()
    gone = missing()
    if gone:
        raise RuntimeError("still missing after install: %s" % ", ".join(gone))
