"""Guest-side fixtures of the VM tier (tests/vm runs inside the qemu VM lab).

On the host this tier cannot run (no rbd / device-mapper in the host kernel); rather than
skip silently, a session that selects any tests/vm item stops with a clear error telling to
use tools/vmlab/run-in-vm. Sessions that do not collect tests/vm are unaffected.
"""
import os
import shutil
import subprocess

import pytest

IN_VM = os.environ.get("RBDSR_IN_VM") == "1"
VM_DIR = os.path.dirname(os.path.abspath(__file__))
RUN_HINT = ("tests/vm needs the real kernel of the qemu VM lab (krbd, device-mapper, LVM): run it "
            "with  tools/vmlab/run-in-vm -- python3 -m pytest -m vm tests/vm "
            "-p tests.cephfixture --junitxml=/results/vm.xml")
CMD_TIMEOUT = 60


def pytest_collection_finish(session):
    if IN_VM:
        return
    vm_items = [i for i in session.items if str(i.fspath).startswith(VM_DIR + os.sep)]
    if vm_items:
        pytest.exit("RBDSR_IN_VM is not set: %d VM-tier test(s) selected on the host. %s"
                    % (len(vm_items), RUN_HINT), returncode=pytest.ExitCode.USAGE_ERROR)


def run(argv, timeout=CMD_TIMEOUT, check=True, env=None):
    """Run a guest command with a timeout; return CompletedProcess (text output)."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (rc %d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p


def _modprobe(*mods):
    for m in mods:
        run(["modprobe", m])


@pytest.fixture(scope="session")
def krbd_ready():
    """The kernel RBD driver is loaded; yields the /sys/bus/rbd directory."""
    _modprobe("rbd")
    bus = "/sys/bus/rbd"
    assert os.path.exists(os.path.join(bus, "add_single_major")), \
        "rbd module loaded but %s/add_single_major is missing" % bus
    return bus


@pytest.fixture(scope="session")
def dm_ready():
    """device-mapper is available (needed to activate LVs); yields /dev/mapper/control."""
    _modprobe("dm-mod")
    ctl = "/dev/mapper/control"
    if not os.path.exists(ctl):
        run(["dmsetup", "mknodes"])
    assert os.path.exists(ctl), "device-mapper control node %s missing" % ctl
    return ctl


@pytest.fixture(scope="module")
def ceph(request, tmp_path_factory, krbd_ready, dm_ready):
    """A Ceph cluster in the guest (the shared one with tests.cephfixture, else the module's
    own), with librados/librbd access for checks; every rbd device unmapped at the end."""
    from krbd_helpers import Ceph, start_cluster, unmap_all
    c = Ceph(start_cluster(request, tmp_path_factory))
    yield c
    unmap_all()
    c.close()


@pytest.fixture
def lvm_env(tmp_path, monkeypatch, dm_ready):
    """A private LVM system dir (copy of /etc/lvm) for one test, so a test that edits
    lvm.conf does not leak into the next. Yields the dir; LVM_SYSTEM_DIR is set in
    os.environ for the test (subprocesses inherit it)."""
    sysdir = tmp_path / "lvm"
    shutil.copytree("/etc/lvm", str(sysdir), symlinks=True)
    monkeypatch.setenv("LVM_SYSTEM_DIR", str(sysdir))
    yield sysdir


@pytest.fixture(scope="session")
def vm_results_dir():
    """Writable host-shared dir for logs and artifacts (copied out with the JUnit XML)."""
    d = os.environ.get("RBDSR_VM_RESULTS", "/results")
    assert os.path.isdir(d), "results share %s not mounted" % d
    return d
