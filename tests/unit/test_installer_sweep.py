"""A kill inside an atomic write (after the temp file is written, before its
rename) leaves a temp file: check reports it, the next enable or disable
removes it, and the tree ends exactly as after an uninterrupted run."""
import os

import pytest

import smtrees
from smtrees import make_env, run_child, run_cli
from rbdsr.installer import fileops

LAYOUTS = ["flat", "package"]


def _temps(root):
    out = []
    for dirpath, _dirs, files in os.walk(root):
        out.extend(os.path.relpath(os.path.join(dirpath, f), root) for f in files if fileops.is_our_temp(f))
    return sorted(out)


def _count_renames(tmpdir, layout, args, prepare=None):
    root, release = make_env(tmpdir.mkdir("count-" + args[0]), layout)
    if prepare:
        prepare(root, release)
    seen = []
    fileops.FAULT = lambda op, path: seen.append(path) if op == "rename" else None
    try:
        assert run_cli(args, root, release)[0] == 0
    finally:
        fileops.FAULT = None
    return len(seen)


def _enable(root, release):
    assert run_cli(["enable"], root, release)[0] == 0


def _picks(total):
    """Which renames to die before: the first, second, middle and last there are."""
    assert total >= 1
    return sorted(set(n for n in (1, 2, total // 2, total) if 1 <= n <= total))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kill_inside_a_write_during_enable_is_swept(tmpdir, layout):
    total = _count_renames(tmpdir, layout, ["enable"])
    ref_root, release = make_env(tmpdir.mkdir("ref"), layout)
    _enable(ref_root, release)
    for n in _picks(total):
        root, release = make_env(tmpdir.mkdir("kill-%d" % n), layout)
        rc, _out, err = run_child(["enable"], root, release, {fileops.DIE_ENV: str(n)})
        assert rc == fileops.DIE_EXIT, err
        left = _temps(root)
        assert left, "rename %d/%d left no temp file" % (n, total)
        rc, out = run_cli(["check"], root, release)
        assert rc == 1 and "temp files left by an interrupted" in out and left[0] in out, out
        rc, out = run_cli(["enable"], root, release)
        assert rc == 0 and "left by an interrupted run" in out, out
        assert _temps(root) == []
        assert run_cli(["check"], root, release)[0] == 0
        assert smtrees.diff_states(smtrees.tree_state(ref_root), smtrees.tree_state(root)) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kill_inside_a_write_during_disable_is_swept(tmpdir, layout):
    total = _count_renames(tmpdir, layout, ["disable"], prepare=_enable)
    for n in _picks(total):
        root, release = make_env(tmpdir.mkdir("kill-%d" % n), layout)
        before = smtrees.tree_state(root)
        _enable(root, release)
        rc, _out, err = run_child(["disable"], root, release, {fileops.DIE_ENV: str(n)})
        assert rc == fileops.DIE_EXIT, err
        assert _temps(root), "rename %d/%d left no temp file" % (n, total)
        rc, out = run_cli(["disable"], root, release)
        assert rc == 0, out
        assert _temps(root) == []
        assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_only_our_temp_names_are_swept(tmpdir):
    d = tmpdir.mkdir("d")
    keep = [".lvm.conf.swp", "lvm.conf.rbdsr-tmp", ".lvm.conf.rbdsr-tmp", ".x.ABCDEFGH.rbdsr-tmp"]
    ours = [".lvm.conf.ab_12xyz.rbdsr-tmp", ".LVHDoISCSISR.py.rbdsr-restore"]
    for name in keep + ours:
        d.join(name).write("x")
    os.symlink("/etc/passwd", str(d.join(".link.abcdefgh.rbdsr-tmp")))
    removed = fileops.sweep_temps([str(d)])
    assert sorted(os.path.basename(p) for p in removed) == sorted(ours)
    assert sorted(os.listdir(str(d))) == sorted(keep + [".link.abcdefgh.rbdsr-tmp"])
