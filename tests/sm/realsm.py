"""A real sm tree (tests/smdom0.py: ../shared/sm or SM_SRC) laid out as dom0
has it under a root, with RBDSR installed there by the real installer
(`install_rbdsr.py enable --root`), run as XAPI runs it: the launcher
/opt/xensource/sm/LVMoISCSISR (followed as dom0 follows it) with the XML-RPC
call in argv[1], the installed copy of RBDSR (root/usr/lib/rbdsr) first on the
path.

Environment tweaks (the only differences from dom0), kept in tests/sm/stubs:
XenAPI is the JSON-backed stand-in of tests/fakesm/xapi; `fairlock` (a systemd
socket service on dom0) is a no-op lock; `syslog` (installed by stubs/
sitecustomize.py, as it is built into some Pythons) writes sm's SMlog lines to
the file in env SMLOG; `bitarray` (CBT only) is absent. The package tree's
error table sits in root/usr/share/sm; sm reads /usr/share/sm, so the
environment points it there (RBDSR_TEST_SM_ERRORS, read by stubs/sitecustomize).
"""
import os
import sys

import driverharness as h
import smdom0

STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs")


def sources():
    return smdom0.sources()


class RealSMTree(h.SMTree):
    """A stand-in dom0 root with a real sm and RBDSR installed by the installer."""

    def __init__(self, workdir, src, install=True, lvm="CA-410086", python=None):
        from rbdsr.installer import hook, layout
        from rbdsr.smglue import shapes
        self.workdir = workdir
        self.src = src
        self.python = python or sys.executable
        self.root = os.path.join(workdir, "root")
        smdom0.lay_out(src, self.root, lvm=lvm)
        self.dom0_layout = layout.detect(self.root, hook.load_spec())
        self.shape = self.dom0_layout.shape
        self.layout = self.shape.kind
        self.pythonpath = os.path.join(self.root, smdom0.SITE)
        self.script = os.path.join(self.root, shapes.resolve_in_root(self.root, shapes.LAUNCHER))
        self.installed = os.path.join(self.root, "usr/lib/rbdsr")
        self.extra_path = [STUBS, h.XAPI_STUB, self.installed]
        self.smlog = os.path.join(workdir, "SMlog")
        self.db = os.path.join(workdir, "xapi.json")
        self.lockdir = os.path.join(workdir, "locks")
        os.makedirs(self.lockdir, exist_ok=True)
        if install:
            self.install()

    def install(self):
        """install_rbdsr.py enable --root, from this checkout, in a child process."""
        rc, out, err = self.installer("enable")
        if rc != 0:
            raise AssertionError("install_rbdsr.py enable --root %s exited %d:\n%s%s" % (self.root, rc, out, err))
        return out

    def installer(self, *args):
        import subprocess
        p = subprocess.Popen([self.python, os.path.join(h.ROOT, "install_rbdsr.py")] + list(args)
                             + ["--root", self.root, "--source", h.ROOT],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        out, err = p.communicate(timeout=300)
        return p.returncode, out, err

    def hook_file(self):
        return os.path.join(self.root, self.dom0_layout.hook_files[0])

    @property
    def origin(self):
        """The class the hook diverts from, as divert logs it."""
        if self.layout == "flat":
            return "__main__.%s" % self.shape.iscsi_class
        return "%s.%s" % (self.shape.iscsi_module, self.shape.iscsi_class)

    def env(self, extra=None):
        env = h.SMTree.env(self, extra)
        # the stubs must shadow the standard syslog module; the installed RBDSR
        # must win over this checkout (ROOT comes last in SMTree.env)
        env["PYTHONPATH"] = os.pathsep.join([STUBS, env["PYTHONPATH"]])
        env["RBDSR_TEST_SM_ERRORS"] = os.path.join(self.root, "usr/share/sm/XE_SR_ERRORCODES.xml")
        if self.layout == "flat":
            # what the shim adds on dom0 when RBDSR.py runs by itself: /opt/xensource/sm, last
            env["PYTHONPATH"] += os.pathsep + os.path.join(self.root, smdom0.OPT_SM)
        return env

    def run(self, call, via="hook", timeout=180, env=None):
        """As SMTree.run; via="direct" executes the installed RBDSR.py."""
        if via != "direct":
            return h.SMTree.run(self, call, via, timeout, env)
        script, self.script = self.script, os.path.join(self.installed, "RBDSR.py")
        try:
            return h.SMTree.run(self, call, "hook", timeout, env)
        finally:
            self.script = script
