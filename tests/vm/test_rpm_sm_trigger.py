"""The rbdsr RPM on a stand-in dom0 whose package manager is the real rpm (Debian's,
in the VM lab), with sm itself installed from RPMs of real sm trees: the trigger
re-hooks sm after every sm update with nobody running anything, and erasing
rbdsr gives sm back byte-identical to its own package (rpm -V sm).

The RPMs are built on the host (the guest does not see ../shared) by
`python3 tests/rpmkit.py prepare <results>/rpm-inputs`, which tools/run-tests vm
runs before booting. The tests run in file order, one stand-in dom0 for the
module; each checks where it starts from. Everything is undone at the end (the
other VM tests share this guest)."""
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from krbd_helpers import MIB, Ceph, start_cluster, unmap_all

RESULTS = os.environ.get("RBDSR_VM_RESULTS", "/results")
INPUTS = os.path.join(RESULTS, "rpm-inputs")
SM = "/opt/xensource/sm"
LIB = "/usr/lib/rbdsr"
INSTALLER = ["/usr/bin/python3", LIB + "/install_rbdsr.py"]
HOOK_MARK = b"# RBDSR-HOOK-BEGIN"
TIMEOUT = 600
INVENTORY = "/etc/xensource-inventory"


def rpm_file(name):
    path = os.path.join(INPUTS, name)
    assert os.path.isfile(path), "%s missing: run `python3 tests/rpmkit.py prepare %s` on the host " \
        "before booting (tools/run-tests vm does)" % (path, INPUTS)
    return path


def sh(argv, timeout=TIMEOUT):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Syslog(object):
    """A syslog daemon stand-in: the datagrams sent to /dev/log (libc syslog(3),
    as Python's syslog module and logger use), kept in order."""

    def __init__(self, path="/dev/log"):
        self.path = path
        self.lines = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.lines.append(data.decode("utf-8", "replace"))

    def since(self, n):
        time.sleep(0.5)  # let the reader drain what the last command sent
        return self.lines[n:]

    def close(self):
        self.stopped = True
        self.thread.join(5)
        self.sock.close()
        os.unlink(self.path)


class Dom0(object):
    def __init__(self, work):
        self.dbpath = os.path.join(work, "rpmdb")
        self.syslog = None

    def rpm(self, *args):
        return sh(["rpm", "--dbpath", self.dbpath] + list(args))

    def rpm_ok(self, *args):
        rc, out, err = self.rpm(*args)
        assert rc == 0, "rpm %s: exit %d\n%s%s" % (" ".join(args), rc, out, err)
        return out + err

    def installed(self, name):
        rc, out, _ = self.rpm("-q", "--qf", "%{VERSION}-%{RELEASE}", name)
        return out.strip() if rc == 0 else None

    def check(self):
        return sh(INSTALLER + ["check"])


def _sm_tree_state():
    out = {}
    for dirpath, _dirs, files in os.walk(SM):
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, SM)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    out[rel] = f.read()
    return out


@pytest.fixture(scope="module")
def dom0(tmp_path_factory):
    assert os.path.isfile(os.path.join(INPUTS, "READY")), \
        "%s/READY missing: run `python3 tests/rpmkit.py prepare %s` on the host first" % (INPUTS, INPUTS)
    for path in (SM, LIB, "/var/lib/rbdsr", INVENTORY):
        assert not os.path.exists(path), "%s exists before the test: not a clean guest" % path
    work = str(tmp_path_factory.mktemp("rpmdom0"))
    saved_lvm = os.path.join(work, "etc-lvm")
    shutil.copytree("/etc/lvm", saved_lvm, symlinks=True)
    d = Dom0(work)
    try:
        # dom0's /etc/lvm as XCP-ng ships it; the installer adds what RBDSR needs
        shutil.rmtree("/etc/lvm")
        shutil.copytree(os.path.join(INPUTS, "lvm"), "/etc/lvm")
        with open(INVENTORY, "w") as f:
            f.write("PRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\nPLATFORM_VERSION='3.4.0'\n")
        d.syslog = Syslog()
        os.makedirs(d.dbpath)
        d.rpm_ok("--initdb")
        yield d
    finally:
        unmap_all()
        for name in ("rbdsr", "sm", "rbdsr-test-dom0"):
            if d.installed(name):
                d.rpm("-e", "--noscripts", "--notriggers", name)
        for path in (SM, LIB, "/var/lib/rbdsr", "/usr/lib/python3.6"):
            shutil.rmtree(path, ignore_errors=True)
        for path in (INVENTORY, "/etc/modules-load.d/rbdsr.conf"):
            if os.path.exists(path):
                os.unlink(path)
        shutil.rmtree("/etc/lvm")
        shutil.copytree(saved_lvm, "/etc/lvm", symlinks=True)
        if d.syslog:
            d.syslog.close()


def test_1_sm_rpm_installed(dom0):
    out = dom0.rpm_ok("-i", rpm_file("rbdsr-test-dom0-8.3.0-1.noarch.rpm"), rpm_file("sm-3.2.12-10.1.noarch.rpm"))
    assert dom0.installed("sm") == "3.2.12-10.1", out
    assert dom0.rpm("-V", "sm")[:2] == (0, "")
    assert os.readlink(SM + "/LVMoISCSISR") == "LVHDoISCSISR.py"
    with open(SM + "/LVHDoISCSISR.py", "rb") as f:
        assert HOOK_MARK not in f.read()


def rbdsr_rpm(release):
    names = [n for n in os.listdir(INPUTS) if n.startswith("rbdsr-") and n.endswith("-%s.noarch.rpm" % release)
             and not n.startswith("rbdsr-test-dom0")]
    assert len(names) == 1, names
    return rpm_file(names[0])


def test_2_rbdsr_rpm_installed_and_check_passes(dom0):
    assert dom0.installed("sm") == "3.2.12-10.1"
    # rpm resolves rbdsr's Requires against what the stand-in dom0 provides: no --nodeps
    out = dom0.rpm_ok("-i", rbdsr_rpm("1"))
    rc, cout, cerr = dom0.check()
    assert rc == 0, out + cout + cerr
    assert "belongs to the rbdsr package" in cout
    with open(SM + "/LVHDoISCSISR.py", "rb") as f:
        assert HOOK_MARK in f.read()
    # the package's own files are untouched by enable; the hooked sm file is not sm's any more
    assert dom0.rpm("-V", "rbdsr")[:2] == (0, "")
    rc, vout, _ = dom0.rpm("-V", "sm")
    assert rc == 1 and [ln.split()[-1] for ln in vout.splitlines()] == [SM + "/LVHDoISCSISR.py"], vout


def test_3_sm_update_is_rehooked_by_the_trigger(dom0):
    assert dom0.installed("rbdsr") and dom0.installed("sm") == "3.2.12-10.1"
    # without triggers, an sm update puts the stock driver back: the classic breakage
    dom0.rpm_ok("-U", "--notriggers", rpm_file("sm-3.2.12-10.2.noarch.rpm"))
    rc, out, _ = dom0.check()
    assert rc == 1 and "hook missing in %s/LVHDoISCSISR.py" % SM in out, out
    # with the trigger: nobody runs anything, the hook is back
    n = len(dom0.syslog.lines)
    out = dom0.rpm_ok("-U", rpm_file("sm-3.2.12-10.3.noarch.rpm"))
    assert "re-applied the RBDSR hook" in out, out
    assert dom0.installed("sm") == "3.2.12-10.3"
    rc, cout, cerr = dom0.check()
    assert rc == 0, out + cout + cerr
    logged = dom0.syslog.since(n)
    assert [ln for ln in logged if "RBDSR" in ln and "sm updated: re-applied the RBDSR hook (hook" in ln], logged
    assert not [ln for ln in logged if "FAILED" in ln], logged


def test_3b_rbdsr_upgrade_keeps_sm_hooked(dom0):
    """rpm -U rbdsr: %preun of the old package sees $1 = 1 and does not disable;
    the hooked sm file is never rewritten (same hook version: same inode, mtime)."""
    assert dom0.installed("rbdsr").endswith("-1")
    st = os.stat(SM + "/LVHDoISCSISR.py")
    n = len(dom0.syslog.lines)
    out = dom0.rpm_ok("-U", rbdsr_rpm("2"))
    assert dom0.installed("rbdsr").endswith("-2")
    assert "RBDSR disabled" not in out and "restored" not in out, out
    st2 = os.stat(SM + "/LVHDoISCSISR.py")
    assert (st2.st_ino, st2.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    rc, cout, cerr = dom0.check()
    assert rc == 0, out + cout + cerr
    assert dom0.rpm("-V", "rbdsr")[:2] == (0, "")
    logged = dom0.syslog.since(n)
    assert [ln for ln in logged if "rbdsr installed or upgraded: the RBDSR hook is in place" in ln], logged


def test_3c_erase_while_hooked_gives_sm_back_then_reinstall(dom0):
    """Erase after the trigger re-hooked an updated sm: the restored driver is the
    update's own file (content, mode, mtime: rpm -V sm clean); install again."""
    assert dom0.installed("rbdsr") and dom0.installed("sm") == "3.2.12-10.3"
    with open(SM + "/LVHDoISCSISR.py", "rb") as f:
        assert HOOK_MARK in f.read()
    out = dom0.rpm_ok("-e", "rbdsr")
    rc, vout, verr = dom0.rpm("-V", "sm")
    assert (rc, vout) == (0, ""), out + vout + verr
    out = dom0.rpm_ok("-i", rbdsr_rpm("2"))
    rc, cout, cerr = dom0.check()
    assert rc == 0, out + cout + cerr


def test_4_sm_rename_update_is_rehooked_on_the_new_file(dom0):
    """xcpng-8.3-2025 -> xcpng-8.3: LVHDoISCSISR.py is gone, the LVMoISCSISR
    symlink points at LVMoISCSISR.py. Needs the installer that follows the
    symlink (the sm shapes change)."""
    assert dom0.installed("rbdsr") and dom0.installed("sm") == "3.2.12-10.3"
    n = len(dom0.syslog.lines)
    out = dom0.rpm_ok("-U", rpm_file("sm-3.2.12-21.1.noarch.rpm"))  # exit 0 even if re-hooking fails
    assert dom0.installed("sm") == "3.2.12-21.1"
    assert not os.path.exists(SM + "/LVHDoISCSISR.py")
    assert os.readlink(SM + "/LVMoISCSISR") == "LVMoISCSISR.py"
    logged = dom0.syslog.since(n)
    rc, cout, cerr = dom0.check()
    assert rc == 0, "\n".join([out, cout, cerr] + logged)
    with open(SM + "/LVMoISCSISR.py", "rb") as f:
        assert HOOK_MARK in f.read()


@pytest.fixture
def mapped_image(request, tmp_path_factory, krbd_ready):
    from rbdsr import krbd
    ceph = Ceph(start_cluster(request, tmp_path_factory))
    ceph.create("rpm-erase-guard", 16 * MIB)
    try:
        iid = ceph.image_id("rpm-erase-guard")
        dev = krbd.map_image(iid, [ceph.mon_addr], ceph.creds, timeout=60)
        yield dev
    finally:
        unmap_all()
        ceph.remove("rpm-erase-guard")
        ceph.close()


def test_5_erase_refused_while_an_rbd_device_is_mapped(dom0, mapped_image):
    assert dom0.installed("rbdsr")
    before = _sm_tree_state()
    rc, out, err = dom0.rpm("-e", "rbdsr")
    assert rc != 0, out + err
    # the installer's own message, naming the device
    assert "RBD devices are mapped on this host: rbd" in err and "rpm-erase-guard" in err, out + err
    assert dom0.installed("rbdsr")
    assert os.path.isfile(LIB + "/RBDSR.py")
    assert _sm_tree_state() == before


def test_6_erase_restores_sm_byte_identical(dom0):
    assert dom0.installed("rbdsr") and dom0.installed("sm")
    out = dom0.rpm_ok("-e", "rbdsr")
    assert not dom0.installed("rbdsr")
    # every sm file as the sm package has it: content, mode, owner, mtime, link targets
    rc, vout, verr = dom0.rpm("-V", "sm")
    assert (rc, vout) == (0, ""), out + vout + verr
    for path in (LIB, "/var/lib/rbdsr", "/usr/lib/python3.6/site-packages/rbdsr.pth",
                 "/etc/modules-load.d/rbdsr.conf"):
        assert not os.path.exists(path), path
    for rel in ("lvm.conf", "lvmlocal.conf", "master/lvm.conf"):
        with open(os.path.join("/etc/lvm", rel), "rb") as a, open(os.path.join(INPUTS, "lvm", rel), "rb") as b:
            assert a.read() == b.read(), rel
