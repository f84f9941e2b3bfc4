"""The hooked sm file may itself be a symlink (/opt/xensource/sm/LVHDoISCSISR.py
-> /usr/lib/sm/LVHDoISCSISR.py): enable and disable change only the real file,
byte-exactly, and every symlink on the way stays the symlink it was."""
import os

import pytest

import smtrees
from smtrees import make_env, read, run_cli

REAL = "usr/lib/sm/LVHDoISCSISR.py"


def _move_behind_a_symlink(root, absolute):
    src = os.path.join(root, smtrees.FLAT_DRIVER)
    dst = os.path.join(root, REAL)
    os.makedirs(os.path.dirname(dst))
    os.rename(src, dst)
    os.symlink("/" + REAL if absolute else os.path.relpath(dst, os.path.dirname(src)), src)


@pytest.mark.parametrize("absolute", [True, False], ids=["absolute", "relative"])
def test_hooked_file_behind_a_symlink_stays_a_symlink(tmpdir, absolute):
    root, release = make_env(tmpdir, "flat")
    _move_behind_a_symlink(root, absolute)
    before = smtrees.tree_state(root)
    original = read(root, REAL)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    after = smtrees.tree_state(root)
    # both links (LVMoISCSISR -> LVHDoISCSISR.py -> the real file) are untouched
    for link in (smtrees.FLAT_DRIVER, "opt/xensource/sm/LVMoISCSISR"):
        assert after[link] == before[link] and after[link][0] == "link"
    hooked = read(root, REAL)
    assert b"# RBDSR-HOOK-BEGIN" in hooked and hooked != original
    assert after[REAL][2] == before[REAL][2]  # the real file keeps its mode
    assert run_cli(["check"], root, release)[0] == 0
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0, out
    assert read(root, REAL) == original
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_a_flat_name_pointing_outside_sm_first_is_still_refused(tmpdir):
    # LVMoISCSISR -> /usr/lib/sm/LVHDoISCSISR.py directly: the launcher does not
    # lead through /opt/xensource/sm, which is no sm shape RBDSR knows
    root, release = make_env(tmpdir, "flat")
    _move_behind_a_symlink(root, True)
    launcher = os.path.join(root, "opt/xensource/sm/LVMoISCSISR")
    os.unlink(launcher)
    os.symlink("/" + REAL, launcher)
    before = smtrees.tree_state(root)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 2
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
