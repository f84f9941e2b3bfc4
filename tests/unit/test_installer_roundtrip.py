"""enable / disable / check / status / uninstall on synthetic dom0 trees of
both sm layouts: byte-identical restore, idempotency, drift, refusals."""
import json
import os
import shutil

import pytest

import smtrees
from smtrees import make_env, read, run_child, run_cli
from rbdsr.installer import fingerprints

LAYOUTS = ["flat", "package"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_enable_check_disable_round_trip_is_byte_identical(tmpdir, layout):
    root, release = make_env(tmpdir, layout)
    before = smtrees.tree_state(root)
    rc, out = run_cli(["check"], root, release)
    assert rc == 1 and "not installed" in out
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    driver = smtrees.DRIVER[layout]
    assert b"# RBDSR-HOOK-BEGIN 1.0.0" in read(root, driver)
    assert read(root, "usr/lib/rbdsr/RBDSR.py").startswith(b"#!/usr/bin/python3")
    assert read(root, "usr/lib/python3.6/site-packages/rbdsr.pth") == b"/usr/lib/rbdsr\n"
    assert read(root, "etc/modules-load.d/rbdsr.conf") == b"rbd\n"
    after = smtrees.tree_state(root)
    for d in ("etc/lvm", "etc/lvm/master"):  # lvm.conf untouched, rbd in lvmlocal.conf
        assert after[d + "/lvm.conf"] == before[d + "/lvm.conf"]
        assert b'"rbd", 1024' in read(root, d + "/lvmlocal.conf")
    assert b"disk/by-id/rbd-" in read(root, "etc/udev/rules.d/65-rbdsr.rules")
    # tests and non-.py files of the release are not installed
    assert not os.path.exists(os.path.join(root, "usr/lib/rbdsr/rbdsr/tests"))
    assert not os.path.exists(os.path.join(root, "usr/lib/rbdsr/rbdsr/test_y.py"))
    assert not os.path.exists(os.path.join(root, "usr/lib/rbdsr/lvm_helpers/notes.txt"))
    rc, out = run_cli(["check"], root, release)
    assert rc == 0, out
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0, out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_enable_twice_is_enable_once(tmpdir, layout):
    root, release = make_env(tmpdir, layout)
    assert run_cli(["enable"], root, release)[0] == 0
    once = smtrees.tree_state(root)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0
    assert "changed" not in out and "created" not in out
    assert smtrees.diff_states(once, smtrees.tree_state(root)) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hotfix_restoring_stock_driver_is_detected_and_repaired(tmpdir, layout):
    root, release = make_env(tmpdir, layout)
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    driver = os.path.join(root, smtrees.DRIVER[layout])
    hotfix = (smtrees.flat_driver_text() if layout == "flat" else smtrees.package_driver_text()) \
        + "\n# hotfix 2\n"
    with open(driver, "w") as f:
        f.write(hotfix)
    rc, out = run_cli(["check"], root, release)
    assert rc == 1
    assert "hook missing in /%s" % smtrees.DRIVER[layout] in out
    assert "run install_rbdsr.py enable" in out
    assert [s for _p, s, _h in fingerprints(root)] == ["absent"]
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    assert run_cli(["check"], root, release)[0] == 0
    assert [s for _p, s, _h in fingerprints(root)] == ["hooked"]
    # disable now restores the hotfixed file, not the pre-hotfix one
    assert run_cli(["disable"], root, release)[0] == 0
    with open(driver) as f:
        assert f.read() == hotfix
    diff = smtrees.diff_states(before, smtrees.tree_state(root))
    assert [d.split(":")[0] for d in diff] == [smtrees.DRIVER[layout]]


def test_disable_after_hotfix_with_hook_removes_only_the_block(tmpdir):
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    driver = os.path.join(root, smtrees.FLAT_DRIVER)
    with open(driver) as f:
        hooked = f.read()
    with open(driver, "w") as f:
        f.write(hooked + "# local edit\n")
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0
    assert "removed just the hook block" in out
    with open(driver) as f:
        assert f.read() == smtrees.flat_driver_text() + "# local edit\n"


def test_disable_after_hotfix_without_hook_leaves_the_file(tmpdir):
    root, release = make_env(tmpdir, "package")
    assert run_cli(["enable"], root, release)[0] == 0
    driver = os.path.join(root, smtrees.PKG_DRIVER)
    with open(driver, "w") as f:
        f.write("# replaced by a hotfix\n")
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0
    assert "carries no hook: left as is" in out
    assert read(root, smtrees.PKG_DRIVER) == b"# replaced by a hotfix\n"


def test_check_lists_every_missing_piece(tmpdir):
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    os.unlink(os.path.join(root, "etc/modules-load.d/rbdsr.conf"))
    with open(os.path.join(root, "usr/lib/rbdsr/rbdsr/__init__.py"), "a") as f:
        f.write("# edited\n")
    os.unlink(os.path.join(root, "etc/lvm/master/lvmlocal.conf"))  # as an lvm2 update might
    rc, out = run_cli(["check"], root, release)
    assert rc == 1
    assert "rbdsr/__init__.py (under %s) modified" % root in out
    assert ("LVM with LVM_SYSTEM_DIR=/etc/lvm/master (under %s) would not see RBD devices: devices/types" % root
            in out)
    assert "rbd is not loaded at boot" in out
    assert "3 problem(s)" in out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dry_run_changes_nothing(tmpdir, layout):
    root, release = make_env(tmpdir, layout)
    before = smtrees.tree_state(root)
    rc, out = run_cli(["enable", "--dry-run"], root, release)
    assert rc == 0
    assert "would change /%s" % smtrees.DRIVER[layout] in out
    assert "would create /usr/lib/rbdsr/RBDSR.py" in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
    assert run_cli(["enable"], root, release)[0] == 0
    enabled = smtrees.tree_state(root)
    rc, out = run_cli(["disable", "--dry-run"], root, release)
    assert rc == 0 and "would restore" in out
    assert smtrees.diff_states(enabled, smtrees.tree_state(root)) == []


def test_unknown_layout_is_refused_and_nothing_changes(tmpdir, capsys):
    root, release = make_env(tmpdir, "flat")
    os.unlink(os.path.join(root, smtrees.FLAT_DRIVER))
    before = smtrees.tree_state(root)
    rc, _out = run_cli(["enable"], root, release)
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown sm shape" in err and "/opt/xensource/sm/LVHDoISCSISR.py" in err
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_flat_layout_with_a_copied_lvmoiscsisr_is_refused(tmpdir, capsys):
    root, release = make_env(tmpdir, "flat")
    link = os.path.join(root, "opt/xensource/sm/LVMoISCSISR")
    os.unlink(link)
    shutil.copy(os.path.join(root, smtrees.FLAT_DRIVER), link)
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 2
    err = capsys.readouterr().err
    assert "/opt/xensource/sm/LVMoISCSISR is a file that imports no sm driver" in err
    assert "unknown sm shape" in err
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_the_launcher_decides_when_both_shapes_are_present(tmpdir):
    # what XAPI executes is the truth: a flat launcher means the flat file, even
    # with a copy of the sm package lying around (and it is left alone)
    root, release = make_env(tmpdir, "flat")
    pkg = os.path.join(root, smtrees.PKG_DRIVER)
    os.makedirs(os.path.dirname(pkg))
    shutil.copy(os.path.join(root, smtrees.FLAT_DRIVER), pkg)
    before = smtrees.read(root, smtrees.PKG_DRIVER)
    assert run_cli(["enable"], root, release)[0] == 0
    assert b"RBDSR-HOOK-BEGIN" in smtrees.read(root, smtrees.FLAT_DRIVER)
    assert smtrees.read(root, smtrees.PKG_DRIVER) == before


@pytest.mark.parametrize("how", ["missing", "duplicated"])
def test_anchor_trouble_is_refused_with_nothing_changed(tmpdir, capsys, how):
    text = smtrees.flat_driver_text()
    if how == "missing":
        text = text.replace("def load(self, sr_uuid) -> None:", "def load(self, uuid) -> None:")
    else:
        text = text.replace("    def create_iscsi_sessions(self, sr_uuid):",
                            "    def load(self, sr_uuid):\n        pass\n\n    def create_iscsi_sessions(self, sr_uuid):")
    root = str(tmpdir.join("root"))
    release = str(tmpdir.join("release"))
    smtrees.build_tree(root, "flat", driver_text=text)
    smtrees.make_release(release)
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 2
    err = capsys.readouterr().err
    assert "expected exactly one line matching" in err and "found %d" % (0 if how == "missing" else 2) in err
    assert "/opt/xensource/sm/LVHDoISCSISR.py" in err and "nothing was changed" in err
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_disable_refuses_while_rbd_devices_are_mapped(tmpdir, capsys):
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    dev = os.path.join(root, "sys/bus/rbd/devices/0")
    os.makedirs(dev)
    for attr, value in (("pool", "rbd"), ("name", "RBDSR-img")):
        with open(os.path.join(dev, attr), "w") as f:
            f.write(value + "\n")
    enabled = smtrees.tree_state(root)
    assert run_cli(["disable"], root, release)[0] == 2
    assert "rbd0 (rbd/RBDSR-img)" in capsys.readouterr().err
    assert smtrees.diff_states(enabled, smtrees.tree_state(root)) == []
    rc, out = run_cli(["status"], root, release)
    assert "mapped RBD:       rbd0 (rbd/RBDSR-img)" in out
    rc, out = run_cli(["disable", "--force"], root, release)
    assert rc == 0 and "--force" in out
    assert b"RBDSR-HOOK" not in read(root, smtrees.FLAT_DRIVER)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_uninstall_removes_everything_even_without_a_manifest(tmpdir, layout):
    root, release = make_env(tmpdir, layout)
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    rc, out = run_cli(["uninstall"], root, release)
    assert rc == 0, out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
    # lost manifest: the hook and our files are still found and removed
    assert run_cli(["enable"], root, release)[0] == 0
    shutil.rmtree(os.path.join(root, "var/lib/rbdsr"))
    rc, out = run_cli(["uninstall"], root, release)
    assert rc == 0, out
    assert "removed the hook block" in out
    assert "removed the rbd device type RBDSR added (marked)" in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_uninstall_leaves_an_unmarked_rbd_entry_alone(tmpdir):
    root, release = make_env(tmpdir, "flat")
    conf = os.path.join(root, "etc/lvm/lvm.conf")
    with open(conf) as f:
        text = f.read()
    text = text.replace("devices {\n", "devices {\n\ttypes = [ \"rbd\", 1024 ]\n", 1)
    with open(conf, "w") as f:
        f.write(text)
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    assert read(root, "etc/lvm/lvm.conf") == text.encode()  # already accepted: not touched
    shutil.rmtree(os.path.join(root, "var/lib/rbdsr"))
    rc, out = run_cli(["uninstall"], root, release)
    assert rc == 0, out
    # lvm.conf untouched throughout; master/lvm.conf's marked entry removed byte-exactly
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_status_summarises(tmpdir):
    root, release = make_env(tmpdir, "package")
    rc, out = run_cli(["status"], root, release)
    assert rc == 1 and "RBDSR installed:  no" in out
    assert run_cli(["enable"], root, release)[0] == 0
    rc, out = run_cli(["status"], root, release)
    assert rc == 0
    assert "sm shape:         package — sm package" in out
    assert "product:          8.4.0 (platform 3.5.0)" in out
    assert "/%s: hooked" % smtrees.PKG_DRIVER in out
    assert "state:            complete" in out


def test_manifest_records_checksums(tmpdir):
    root, release = make_env(tmpdir, "flat")
    before = read(root, smtrees.FLAT_DRIVER)
    assert run_cli(["enable"], root, release)[0] == 0
    with open(os.path.join(root, "var/lib/rbdsr/manifest.json")) as f:
        m = json.load(f)
    assert m["complete"] is True and m["version"] == "1.0.0"
    entry = m["files"][smtrees.FLAT_DRIVER]
    import hashlib
    assert entry["orig_sha256"] == hashlib.sha256(before).hexdigest()
    assert entry["sha256"] == hashlib.sha256(read(root, smtrees.FLAT_DRIVER)).hexdigest()
    assert read(root, "var/lib/rbdsr/backup/" + smtrees.FLAT_DRIVER) == before
    assert oct(os.stat(os.path.join(root, smtrees.FLAT_DRIVER)).st_mode & 0o777) == oct(0o755)


def test_upgrade_replaces_hook_and_retires_old_files(tmpdir):
    root, release = make_env(tmpdir, "flat")
    before = smtrees.tree_state(root)
    with open(os.path.join(release, "rbdsr", "old.py"), "w") as f:
        f.write("OLD = 1\n")
    assert run_cli(["enable"], root, release)[0] == 0
    assert os.path.exists(os.path.join(root, "usr/lib/rbdsr/rbdsr/old.py"))
    release2 = str(tmpdir.join("release2"))
    smtrees.make_release(release2, version="1.1.0")
    rc, out = run_cli(["enable"], root, release2)
    assert rc == 0, out
    assert b"# RBDSR-HOOK-BEGIN 1.1.0" in read(root, smtrees.FLAT_DRIVER)
    assert read(root, smtrees.FLAT_DRIVER).count(b"RBDSR-HOOK-BEGIN") == 1
    assert not os.path.exists(os.path.join(root, "usr/lib/rbdsr/rbdsr/old.py"))
    assert run_cli(["check"], root, release2)[0] == 0
    assert run_cli(["disable"], root, release2)[0] == 0
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_bad_arguments_exit_2_without_traceback(tmpdir, capsys):
    from rbdsr.installer import cli
    for argv in (["bogus"], [], ["enable", "--nope"], ["check", "--timeout", "x"]):
        with pytest.raises(SystemExit) as e:
            cli.install_main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "usage:" in err and "Traceback" not in err
    assert cli.install_main(["check", "--root", str(tmpdir.join("nope"))]) == 2
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.install_main(["--help"])
    assert e.value.code == 0
    assert "exit codes:" in capsys.readouterr().out


def test_check_ceph_reports_monitor_reachability(tmpdir):
    import socket
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        rc, out = run_cli(["check", "--ceph", "--target", "127.0.0.1:%d" % port], root, release)
        assert rc == 0 and "monitor 127.0.0.1:%d reachable" % port in out
    finally:
        srv.close()
    os.makedirs(os.path.join(root, "etc/ceph"))
    with open(os.path.join(root, "etc/ceph/ceph.conf"), "w") as f:
        f.write("[global]\nmon host = [v2:127.0.0.1:%d/0,v1:127.0.0.1:%d/0]\n" % (port, port))
    rc, out = run_cli(["check", "--ceph", "--timeout", "1"], root, release)
    assert rc == 1 and "no Ceph monitor reachable" in out


def test_the_real_release_installs_compiles_and_uninstalls(tmpdir):
    """This repository as the release: every shipped .py compiles, check passes,
    uninstall leaves the tree as it was."""
    from rbdsr.errors import RBDError
    from rbdsr.installer import sources
    try:
        files = sources.collect(smtrees.REPO)
    except RBDError as e:
        pytest.skip("the repository is not a complete release yet: %s" % e)
    root = str(tmpdir.join("root"))
    smtrees.build_tree(root, "flat")
    before = smtrees.tree_state(root)
    rc, out = run_cli(["enable"], root, smtrees.REPO)
    assert rc == 0, out
    for rel in files:
        assert os.path.isfile(os.path.join(root, "usr/lib/rbdsr", rel)), rel
    assert "install_rbdsr.py" in files and "rbdsr/installer/hook.py" in files
    assert not [f for f in files if "/tests/" in f or os.path.basename(f).startswith("test_")]
    rc, out = run_cli(["check"], root, smtrees.REPO)
    assert rc == 0, out
    # the installed copy can check and uninstall on its own (release dir gone)
    installed = os.path.join(root, "usr/lib/rbdsr")
    rc, out, err = run_child(["check"], root, installed, script=os.path.join(installed, "install_rbdsr.py"))
    assert rc == 0, out + err
    rc, out, err = run_child([], root, installed, script=os.path.join(installed, "uninstall_rbdsr.py"))
    assert rc == 0, out + err
    assert "RBDSR disabled" in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_disable_removes_byte_code_of_our_files(tmpdir):
    """On the running system enable byte-compiles /usr/lib/rbdsr; disable must
    not leave the __pycache__ directories (and so the directories) behind."""
    import compileall
    root, release = make_env(tmpdir, "package")
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    assert compileall.compile_dir(os.path.join(root, "usr/lib/rbdsr"), quiet=1)
    assert os.path.isdir(os.path.join(root, "usr/lib/rbdsr/rbdsr/__pycache__"))
    assert run_cli(["disable"], root, release)[0] == 0
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_disable_leaves_a_file_with_broken_markers_and_keeps_the_record(tmpdir):
    root, release = make_env(tmpdir, "flat")
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    driver = os.path.join(root, smtrees.FLAT_DRIVER)
    with open(driver) as f:
        text = f.read()
    with open(driver, "w") as f:
        f.write(text.replace("        # RBDSR-HOOK-END\n", ""))
    rc, out = run_cli(["disable"], root, release)
    assert rc == 1
    assert "hook markers are broken" in out and "left as is" in out
    assert os.path.exists(os.path.join(root, "var/lib/rbdsr/manifest.json"))
    # sm may still reach our code through that file: the code stays until it is fixed
    assert os.path.exists(os.path.join(root, "usr/lib/rbdsr/RBDSR.py"))
    # fixed by hand (the stock file back): the next disable finishes the job
    with open(driver, "w") as f:
        f.write(smtrees.flat_driver_text())
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0, out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_admin_command_installed_on_path_and_removed(tmpdir):
    root, release = make_env(tmpdir, "flat")
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    path = os.path.join(root, "usr/sbin/rbdsr")
    assert read(root, "usr/sbin/rbdsr") == read(release, "bin/rbdsr")
    assert os.stat(path).st_mode & 0o777 == 0o755
    assert run_cli(["check"], root, release)[0] == 0
    assert run_cli(["disable"], root, release)[0] == 0
    assert not os.path.exists(path)
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
