"""Installer pieces that touch the running system, exercised read-only or on
temp directories: dom0 python compile checks, layout detection details,
monitor parsing, the lock."""
import fcntl
import os

import pytest

import smtrees
from smtrees import make_env, run_cli
from rbdsr.installer import enable, hook, layout, system
from rbdsr.installer.context import Context

PY_OK = "x = 1\n"
PY_BAD = "def f(:\n"


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.mark.skipif(not os.path.exists(system.DOM0_PYTHON), reason="no /usr/bin/python3 on this machine")
def test_live_compile_checks_use_dom0_python_and_write_no_pyc(tmpdir):
    ctx = Context("/")
    assert system.dom0_python("/") == system.DOM0_PYTHON
    good = _write(str(tmpdir.join("good.py")), PY_OK)
    bad = _write(str(tmpdir.join("bad.py")), PY_BAD)
    assert enable.compile_check_live(ctx, good) is None
    assert "SyntaxError" in enable.compile_check_live(ctx, bad)
    assert not tmpdir.join("__pycache__").exists()


@pytest.mark.skipif(not os.path.exists(system.DOM0_PYTHON), reason="no /usr/bin/python3 on this machine")
def test_live_compileall_reports_a_broken_file(tmpdir):
    ctx = Context("/")
    top = tmpdir.mkdir("tree")
    _write(str(top.join("a.py")), PY_OK)
    assert enable.compile_tree_live(ctx, str(top)) is None
    assert top.join("__pycache__").exists()
    _write(str(top.join("b.py")), PY_BAD)
    assert enable.compile_tree_live(ctx, str(top)) is not None


def test_under_a_root_the_current_python_is_used(tmpdir):
    import sys
    assert system.dom0_python(str(tmpdir)) == sys.executable
    assert system.rbd_module_state(str(tmpdir)) == ("skipped", "not the running system")
    assert system.sm_package_version(str(tmpdir)).startswith("unknown")


def test_inventory_is_parsed(tmpdir):
    root = str(tmpdir)
    smtrees.build_tree(root, "flat")
    inv = layout.read_inventory(root)
    assert inv["PRODUCT_VERSION"] == "8.3.0" and inv["PLATFORM_VERSION"] == "3.4.0"
    lay = layout.detect(root, hook.load_spec())
    assert lay.kind == "flat" and lay.product_version == "8.3.0"
    assert lay.site_packages == "usr/lib/python3.6/site-packages"


def test_package_layout_under_lib64_is_found(tmpdir):
    root = str(tmpdir)
    smtrees.build_tree(root, "package")
    src = os.path.join(root, "usr/lib/python3.6/site-packages/sm")
    dst = os.path.join(root, "usr/lib64/python3.11/site-packages/sm")
    os.makedirs(os.path.dirname(dst))
    os.rename(src, dst)
    lay = layout.detect(root, hook.load_spec())
    assert lay.kind == "package"
    assert lay.hook_files == ["usr/lib64/python3.11/site-packages/sm/drivers/LVHDoISCSISR.py"]
    assert lay.site_packages == "usr/lib64/python3.11/site-packages"


def test_package_installed_twice_is_refused(tmpdir):
    import shutil
    root = str(tmpdir)
    smtrees.build_tree(root, "package")
    dst = os.path.join(root, "usr/lib/python3.11/site-packages/sm")
    shutil.copytree(os.path.join(root, "usr/lib/python3.6/site-packages/sm"), dst)
    with pytest.raises(layout.LayoutError) as e:
        layout.detect(root, hook.load_spec())
    assert "expected exactly one" in str(e.value)


def test_flat_layout_without_site_packages_creates_and_removes_it(tmpdir):
    import shutil
    root, release = make_env(tmpdir, "flat")
    shutil.rmtree(os.path.join(root, "usr/lib/python3.6"))
    before = smtrees.tree_state(root)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0 and "will be created" in out
    assert os.path.isfile(os.path.join(root, "usr/lib/python3.6/site-packages/rbdsr.pth"))
    assert run_cli(["disable"], root, release)[0] == 0
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_monitor_parsing():
    # the kernel client's view (rbdsr.monaddr): v1 monitors only
    assert system.parse_monitors("10.0.0.1,10.0.0.2:3300,10.0.0.3:6790") == [("10.0.0.1", 6789), ("10.0.0.3", 6790)]
    assert system.parse_monitors("[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0]") == [("10.0.0.1", 6789)]
    assert system.parse_monitors("not a monitor!") == []
    assert system.parse_monitors("[::1]:6789") == [("::1", 6789)]
    assert system.parse_monitors("") == []
    assert system.tcp_reachable("127.0.0.1", 0) == "bad port"


def test_a_second_installer_is_refused_while_one_runs(tmpdir, capsys):
    root, release = make_env(tmpdir, "flat")
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = smtrees.tree_state(root)
        assert run_cli(["enable"], root, release)[0] == 2
        assert "another install_rbdsr.py" in capsys.readouterr().err
        assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
    finally:
        os.close(fd)
    assert run_cli(["enable"], root, release)[0] == 0


def test_mapped_devices_are_listed_from_sysfs(tmpdir):
    root = str(tmpdir)
    for dev_id, pool, ns, name in (("0", "rbd", "", "a"), ("12", "p", "ns1", "b")):
        d = os.path.join(root, system.RBD_SYSFS, dev_id)
        os.makedirs(d)
        for attr, value in (("pool", pool), ("pool_ns", ns), ("name", name)):
            _write(os.path.join(d, attr), value + "\n")
    assert system.mapped_rbd_devices(root) == ["rbd0 (rbd/a)", "rbd12 (p/ns1/b)"]
