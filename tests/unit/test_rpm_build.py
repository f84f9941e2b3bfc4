"""tools/build-rpm builds the rbdsr noarch RPM with the real rpmbuild (Debian's
`rpm` package, installed by tools/setup-env); rpm -qp shows what dom0 would get:
the installer's files, the scriptlets and the sm triggers, only dom0's requires."""
import gzip
import os
import re
import subprocess
import sys

import pytest

from rbdsr.installer import sources

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PTH = "/usr/lib/python3.6/site-packages/rbdsr.pth"


def sh(argv, timeout=300):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(argv), p.returncode, out, err)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("rpm"))
    sh([sys.executable, os.path.join(REPO, "tools", "build-rpm"), "--out", out, "--release", "3", "--repo"])
    with open(os.path.join(REPO, "VERSION")) as f:
        version = f.read().strip()
    rpm = os.path.join(out, "rbdsr-%s-3.noarch.rpm" % version)
    assert os.path.isfile(rpm), os.listdir(out)
    return out, rpm, version


def test_version_release_and_payload(built):
    _out, rpm, version = built
    got = sh(["rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{PAYLOADCOMPRESSOR}", rpm])
    # gzip: dom0's rpm 4.11 cannot read zstd payloads
    assert got == "rbdsr %s 3 noarch gzip" % version


def test_files_are_what_the_installer_installs(built):
    _out, rpm, _v = built
    listed = set(sh(["rpm", "-qpl", rpm]).split())
    lib = "/" + sources.INSTALL_DIR
    files = set("%s/%s" % (lib, rel) for rel in sources.collect(REPO))
    dirs = set()
    for path in files:
        d = os.path.dirname(path)
        while d != lib and d.startswith(lib):
            dirs.add(d)
            d = os.path.dirname(d)
    commands = set("/" + dest for _src, dest in sources.COMMANDS)
    assert listed == files | dirs | {lib, PTH} | commands
    modes = dict(reversed(line.split(" ", 1)) for line in sh(
        ["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", rpm]).splitlines())
    assert modes[lib + "/install_rbdsr.py"] == "-rwxr-xr-x"
    assert modes[PTH] == "-rw-r--r--"
    assert all(modes[c] == "-rwxr-xr-x" for c in commands)


def test_scriptlets_and_sm_triggers(built):
    _out, rpm, _v = built
    scripts = sh(["rpm", "-qp", "--scripts", rpm])
    assert "postinstall scriptlet" in scripts
    assert "/usr/lib/rbdsr/install_rbdsr.py enable --packaged" in scripts
    # disable on erase only ($1 = 0), never on upgrade
    pre = scripts.split("preuninstall scriptlet", 1)[1]
    assert 'if [ "$1" -eq 0 ]; then' in pre and "install_rbdsr.py disable" in pre
    triggers = sh(["rpm", "-qp", "--triggers", rpm])
    parts = re.split(r"^(\w+) scriptlet \(using /bin/sh\) -- (.*)$", triggers, flags=re.M)
    assert parts[0] == "" and [parts[1:][i:i + 2] for i in range(0, len(parts) - 1, 3)] == \
        [["triggerin", "sm"], ["triggerpostun", "sm"]], triggers
    for body in parts[3::3]:
        # never fails the sm transaction
        assert "install_rbdsr.py rehook --packaged" in body and "|| :" in body
        assert body.rstrip().endswith("exit 0"), body


def test_requires_only_what_dom0_has(built):
    _out, rpm, _v = built
    reqs = set(line.strip() for line in sh(["rpm", "-qpR", rpm]).splitlines())
    plain = set(r for r in reqs if not r.startswith("rpmlib("))
    assert plain == {"/bin/sh", "python3 >= 3.6", "lvm2", "kmod"}, reqs


def test_yum_repository(built):
    out, rpm, _v = built
    with open(os.path.join(out, "repodata", "repomd.xml")) as f:
        repomd = f.read()
    primary = [n for n in os.listdir(os.path.join(out, "repodata")) if n.endswith("-primary.xml.gz")]
    assert len(primary) == 1 and primary[0] in repomd
    with gzip.open(os.path.join(out, "repodata", primary[0]), "rt") as f:
        xml = f.read()
    assert 'packages="1"' in xml and "<name>rbdsr</name>" in xml and "<arch>noarch</arch>" in xml
    with open(os.path.join(REPO, "docs", "rbdsr.repo")) as f:
        repo_file = f.read()
    assert repo_file.startswith("[rbdsr]") and "baseurl=" in repo_file and "gpgcheck=" in repo_file
