"""RPMs for the stand-in dom0 of the RPM VM test (tests/vm/test_rpm_sm_trigger.py),
built on the host with the real rpmbuild, because the guest does not see
../shared:

  python3 tests/rpmkit.py prepare DIR     (tools/run-tests vm runs it into the results share)

DIR then holds:
  rbdsr-V-{1,2}.noarch.rpm      tools/build-rpm of this tree, releases 1 and 2 (an upgrade)
  sm-3.2.12-10.{1,2,3}.noarch.rpm  ../shared/sm/xcpng-8.3-2025 (LVHD names), three
                                releases of the same tree: each upgrade puts the stock
                                driver back over the hooked one, as an sm hotfix does
  sm-3.2.12-21.1.noarch.rpm     ../shared/sm/xcpng-8.3 (today: LVHD -> LVM rename)
  rbdsr-test-dom0-*.noarch.rpm  what the stand-in dom0 has besides sm: provides python3
                                3.6.8, lvm2, kmod, /bin/sh, and the XAPI stand-ins
  lvm/                          dom0's /etc/lvm as shipped (../shared/lvm)
  READY                         written last

Each sm RPM holds exactly the files and symlinks its tree's <tree>.manifest lists
in /opt/xensource/sm (mode 0755, as sm's Makefile installs them), plus
sm_typing.py in the guest python's site directory (sm's Makefile puts it in
python3's last sys.path entry). Lines of the manifest naming another subpackage
are left out. ../shared is found beside the repository, or at $RBDSR_SHARED.
"""
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RBDSR_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
SM_DIR = "opt/xensource/sm"
GUEST_SITE = "usr/lib/python3/dist-packages"  # Debian python3's last sys.path entry (the guest's)
RBDSR_RELEASES = ("1", "2")  # the same tree twice: an rbdsr upgrade
SM_VERSION = "3.2.12"
SM_RELEASES = (("xcpng-8.3-2025", "10.1"), ("xcpng-8.3-2025", "10.2"), ("xcpng-8.3-2025", "10.3"),
               ("xcpng-8.3", "21.1"))
DOM0 = "rbdsr-test-dom0"
DOM0_VERSION = "8.3.0"
# stand-ins for what dom0 has in python3's site-packages (XAPI's client, sm's lock service)
DOM0_PY = {"XenAPI.py": "tests/fakesm/xapi/XenAPI.py", "fairlock.py": "tests/sm/stubs/fairlock.py",
           "bitarray.py": "tests/sm/stubs/bitarray.py"}
LVM_FILES = ("lvm.conf", "lvmlocal.conf", "master/lvm.conf")
TIMEOUT = 600

_SPEC = """%%global __os_install_post %%{nil}
%%global _binary_payload w9.gzdio
AutoReqProv: no
Name: %(name)s
Version: %(version)s
Release: %(release)s
Summary: %(summary)s
License: test data
BuildArch: noarch
%(extra)s
%%description
%(summary)s
%%install
cp -a %(stage)s/. %%{buildroot}/
%%files
%%defattr(-,root,root,-)
%(files)s
"""


def parse_manifest(path):
    """[(relpath, link target or None)] of a <tree>.manifest."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if " -> " in line:
                name, target = line.split(" -> ", 1)
                out.append((name.strip().lstrip("/"), target.strip()))
                continue
            parts = line.split(None, 1)
            if len(parts) == 2:
                if "subpackage" in parts[1]:
                    continue  # shipped by another sm subpackage
                raise ValueError("%s: cannot read line %r" % (path, line))
            out.append((parts[0].lstrip("/"), None))
    return out


def _source(tree, rel):
    """Where sm's Makefile takes /opt/xensource/sm/<name> from: drivers/, else the
    one file of that name elsewhere in the tree (multipath/multipath-root-setup)."""
    name = os.path.relpath(rel, SM_DIR)
    path = os.path.join(tree, "drivers", name)
    if os.path.isfile(path):
        return path
    hits = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in ("tests", ".git")]
        if os.path.basename(name) in filenames:
            hits.append(os.path.join(dirpath, os.path.basename(name)))
    if len(hits) != 1:
        raise ValueError("%s: %d candidates for %s: %s" % (tree, len(hits), rel, hits))
    return hits[0]


def rpmbuild(out, name, version, release, summary, stage, files, extra=""):
    """Build one noarch RPM of the staged tree; returns its path."""
    top = tempfile.mkdtemp(prefix="rbdsr-rpmkit-")
    try:
        spec = os.path.join(top, name + ".spec")
        with open(spec, "w") as f:
            f.write(_SPEC % {"name": name, "version": version, "release": release, "summary": summary,
                             "stage": stage, "files": "\n".join(files), "extra": extra})
        p = subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", "_topdir " + top, spec],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=TIMEOUT)
        if p.returncode != 0:
            raise RuntimeError("rpmbuild %s failed:\n%s" % (name, p.stdout))
        rpm = "%s-%s-%s.noarch.rpm" % (name, version, release)
        shutil.copy2(os.path.join(top, "RPMS", "noarch", rpm), os.path.join(out, rpm))
        return os.path.join(out, rpm)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def build_sm(out, tree_name, release):
    tree = os.path.join(SHARED, "sm", tree_name)
    entries = parse_manifest(os.path.join(SHARED, "sm", tree_name + ".manifest"))
    stage = tempfile.mkdtemp(prefix="rbdsr-smstage-")
    try:
        files = ["%dir /" + SM_DIR]
        for rel, target in entries:
            dest = os.path.join(stage, rel)
            if not os.path.isdir(os.path.dirname(dest)):
                os.makedirs(os.path.dirname(dest))
                files.append("%dir /" + os.path.dirname(rel))
            if target is not None:
                os.symlink(target, dest)
            else:
                shutil.copyfile(_source(tree, rel), dest)
                os.chmod(dest, 0o755)
            files.append("/" + rel)
        typing = os.path.join(tree, "sm_typing", "__init__.py")
        if os.path.isfile(typing):
            os.makedirs(os.path.join(stage, GUEST_SITE))
            shutil.copyfile(typing, os.path.join(stage, GUEST_SITE, "sm_typing.py"))
            files.append("/%s/sm_typing.py" % GUEST_SITE)
        return rpmbuild(out, "sm", SM_VERSION, release, "sm from ../shared/sm/%s (test data)" % tree_name,
                        stage, files)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def build_dom0(out):
    stage = tempfile.mkdtemp(prefix="rbdsr-dom0stage-")
    try:
        os.makedirs(os.path.join(stage, GUEST_SITE))
        files = []
        for name, src in sorted(DOM0_PY.items()):
            shutil.copyfile(os.path.join(REPO, src), os.path.join(stage, GUEST_SITE, name))
            files.append("/%s/%s" % (GUEST_SITE, name))
        provides = "Provides: python3 = 3.6.8\nProvides: lvm2\nProvides: kmod\nProvides: /bin/sh\n"
        return rpmbuild(out, DOM0, DOM0_VERSION, "1", "stand-in dom0 base for the RBDSR RPM test",
                        stage, files, provides)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def prepare(out):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for release in RBDSR_RELEASES:
        p = subprocess.run([sys.executable, os.path.join(REPO, "tools", "build-rpm"), "--out", out,
                            "--release", release],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=TIMEOUT)
        if p.returncode != 0:
            raise RuntimeError("tools/build-rpm failed:\n" + p.stdout)
    for name in os.listdir(out):
        if name.endswith(".src.rpm"):
            os.unlink(os.path.join(out, name))
    for tree, release in SM_RELEASES:
        build_sm(out, tree, release)
    build_dom0(out)
    for rel in LVM_FILES:
        dest = os.path.join(out, "lvm", rel)
        if not os.path.isdir(os.path.dirname(dest)):
            os.makedirs(os.path.dirname(dest))
        shutil.copyfile(os.path.join(SHARED, "lvm", rel), dest)
    with open(os.path.join(out, "READY"), "w") as f:
        f.write("\n".join(sorted(os.listdir(out))) + "\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "prepare":
        sys.exit("usage: python3 tests/rpmkit.py prepare DIR")
    print(prepare(os.path.abspath(sys.argv[2])))
