"""install_rbdsr.py enable --packaged: the mode the rbdsr RPM's scriptlets use.
rpm owns /usr/lib/rbdsr and rbdsr.pth; the installer hooks sm and configures the
host around them, and never records, restores or removes the package's files."""
import json
import os
import shutil

import pytest
import smtrees
from smtrees import make_env, run_cli

from rbdsr.installer import sources
from rbdsr.installer.context import PTH, PTH_TEXT

LIB = sources.INSTALL_DIR
PKG_PTH = os.path.join(sources.DOM0_SITE_PACKAGES, PTH)


def package_install(root, release):
    """What `rpm -i rbdsr` puts on disk: the release's files in /usr/lib/rbdsr
    and rbdsr.pth. Returns the package's own release dir."""
    lib = os.path.join(root, LIB)
    for rel in sources.collect(release):
        dest = os.path.join(lib, rel)
        if not os.path.isdir(os.path.dirname(dest)):
            os.makedirs(os.path.dirname(dest))
        shutil.copy2(os.path.join(release, rel), dest)
    with open(os.path.join(root, PKG_PTH), "w") as f:
        f.write(PTH_TEXT)
    return lib


def manifest(root):
    with open(os.path.join(root, "var/lib/rbdsr/manifest.json")) as f:
        return json.load(f)


def package_files(root):
    return {k: v for k, v in smtrees.tree_state(root).items()
            if k == PKG_PTH or k == LIB or k.startswith(LIB + "/")}


def sm_state(root):
    return {k: v for k, v in smtrees.tree_state(root).items() if k.startswith("opt/") or k.startswith("etc/")}


def sm_mtimes(root):
    top = os.path.join(root, "opt/xensource/sm")
    return {n: os.lstat(os.path.join(top, n)).st_mtime_ns for n in os.listdir(top)}


def test_packaged_enable_leaves_the_package_files_to_rpm(tmpdir):
    root, release = make_env(tmpdir, "flat")
    src = package_install(root, release)
    before_pkg, before_sm = package_files(root), sm_state(root)
    rc, out = run_cli(["enable", "--packaged"], root, src)
    assert rc == 0, out
    assert package_files(root) == before_pkg
    m = manifest(root)
    assert m["packaged"] is True and m["complete"] is True
    # the package's files (usr/) are rpm's; what enable writes in /etc stays enable's
    assert not [r for r, e in m["files"].items() if e["role"] == "installed" and r.startswith("usr/")], m["files"]
    assert not [d for d in m["dirs"] if d.startswith("usr/")], m["dirs"]
    assert m["files"][smtrees.FLAT_DRIVER]["role"] == "hook"
    rc, out = run_cli(["check"], root, src)
    assert rc == 0 and "belongs to the rbdsr package" in out, out
    # a hotfix replaced the hooked file; the admin runs plain enable from the installed copy:
    # still packaged (sticky), the package's files still not recorded
    with open(os.path.join(root, smtrees.FLAT_DRIVER), "w") as f:
        f.write(smtrees.flat_driver_text())
    mtimes = sm_mtimes(root)  # the hotfix's file: what disable must give back
    assert run_cli(["check"], root, src)[0] == 1
    rc, out = run_cli(["enable"], root, src)
    assert rc == 0, out
    assert manifest(root)["packaged"] is True
    assert not [r for r, e in manifest(root)["files"].items() if e["role"] == "installed" and r.startswith("usr/")]
    # erase (%preun): sm and /etc back byte-identical with their mtimes, package files untouched
    rc, out = run_cli(["disable"], root, src)
    assert rc == 0, out
    assert sm_state(root) == before_sm
    assert sm_mtimes(root) == mtimes
    assert package_files(root) == before_pkg
    assert not os.path.exists(os.path.join(root, "var/lib/rbdsr"))


def test_packaged_needs_the_package_copy(tmpdir):
    root, release = make_env(tmpdir, "flat")
    package_install(root, release)
    before = smtrees.tree_state(root)
    rc, out = run_cli(["enable", "--packaged"], root, release)
    assert rc == 2
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_packaged_refuses_when_the_package_pth_is_missing(tmpdir):
    root, release = make_env(tmpdir, "flat")
    src = package_install(root, release)
    os.unlink(os.path.join(root, PKG_PTH))
    sm = sm_state(root)
    rc, out = run_cli(["enable", "--packaged"], root, src)
    assert rc == 2 and "of the rbdsr package is missing" in out, out
    assert sm_state(root) == sm  # undone: sm as it was


def test_uninstall_refuses_a_packaged_install(tmpdir):
    root, release = make_env(tmpdir, "flat")
    src = package_install(root, release)
    assert run_cli(["enable", "--packaged"], root, src)[0] == 0
    before = smtrees.tree_state(root)
    rc, out = run_cli(["uninstall"], root, src)
    assert rc == 2
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_rpm_over_a_release_dir_install_takes_the_files_over(tmpdir):
    """enable from a release directory first, then the RPM over it: the files
    leave the manifest (rpm owns them now), disable leaves them to rpm."""
    root, release = make_env(tmpdir, "flat")
    before_sm = sm_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    src = package_install(root, release)
    rc, out = run_cli(["enable", "--packaged"], root, src)
    assert rc == 0, out
    m = manifest(root)
    # the package's files (usr/) are rpm's; what enable writes in /etc stays enable's
    assert not [r for r, e in m["files"].items() if e["role"] == "installed" and r.startswith("usr/")], m["files"]
    pkg = package_files(root)
    assert run_cli(["disable"], root, src)[0] == 0
    assert package_files(root) == pkg
    assert sm_state(root) == before_sm


@pytest.mark.parametrize("new_bytes", [True, False], ids=["new-bytes", "same-bytes"])
def test_disable_restores_an_sm_update_with_its_mtime(tmpdir, new_bytes):
    """An sm update replaced the hooked file (the package's mtime; new bytes, or
    the same bytes as before the hook); enable re-hooks it; disable gives back
    exactly that file, mtime and mode included (rpm -V sm checks them)."""
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    path = os.path.join(root, smtrees.FLAT_DRIVER)
    text = smtrees.flat_driver_text()
    with open(path, "w") as f:
        f.write(text.replace("(fixture)", "(fixture, update 2)") if new_bytes else text)
    os.chmod(path, 0o750)
    os.utime(path, (1700001234, 1700001234))
    updated = {k: v for k, v in sm_state(root).items() if k.startswith("opt/")}
    assert run_cli(["enable"], root, release)[0] == 0
    assert os.stat(path).st_mtime != 1700001234
    assert run_cli(["disable"], root, release)[0] == 0
    assert {k: v for k, v in sm_state(root).items() if k.startswith("opt/")} == updated
    assert os.stat(path).st_mtime_ns == 1700001234 * 10 ** 9
    assert os.stat(path).st_mode & 0o7777 == 0o750
