"""The installer on each real sm tree laid out as dom0 has it (its manifest,
dom0's shipped /etc/lvm): enable, check (exit 0), status naming the shape,
disable byte-identical -- symlinks included -- and the hooked file compiles."""
import os
import py_compile
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "unit"))

import smdom0  # noqa: E402
import smtrees  # noqa: E402
from rbdsr.installer import fingerprints, hook, layout  # noqa: E402
from rbdsr.smglue import shapes  # noqa: E402


@pytest.fixture
def env(sm_source, tmpdir):
    root = smdom0.lay_out(sm_source, str(tmpdir.join("root")))
    lay = layout.detect(root, hook.load_spec())
    return root, lay


def _cli(args, root):
    return smtrees.run_cli(args, root, smtrees.REPO)


def test_the_shape_is_found_by_following_the_launcher(sm_source, env):
    root, lay = env
    assert lay.shape.key == sm_source.shape
    shape, rel, what = shapes.detect_root(root)
    assert shape is lay.shape and what.startswith("/opt/xensource/sm/LVMoISCSISR")
    with open(os.path.join(root, lay.hook_files[0])) as f:
        assert "\nclass %s(" % shape.iscsi_class in f.read()


def test_round_trip_is_byte_identical(sm_source, env, tmpdir):
    root, lay = env
    driver = lay.hook_files[0]
    before = smtrees.tree_state(root)
    original = smtrees.read(root, driver)
    rc, out = _cli(["enable"], root)
    assert rc == 0, out
    hooked = smtrees.read(root, driver)
    assert hooked.count(b"# RBDSR-HOOK-BEGIN") == 1
    py_compile.compile(os.path.join(root, driver), cfile=str(tmpdir.join("x.pyc")), doraise=True)
    assert hook.strip(hooked.decode("utf-8")) == original.decode("utf-8")
    assert [s for _p, s, _h in fingerprints(root)] == ["hooked"]
    # the launcher is still what sm made it (a symlink stays a symlink)
    assert smtrees.tree_state(root)["opt/xensource/sm/LVMoISCSISR"] == before["opt/xensource/sm/LVMoISCSISR"]
    rc, out = _cli(["check"], root)
    assert rc == 0, out
    rc, out = _cli(["status"], root)
    assert "sm shape:         %s — " % sm_source.shape in out, out
    rc, out = _cli(["disable"], root)
    assert rc == 0, out
    assert smtrees.read(root, driver) == original
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_the_anchor_is_where_the_design_says(env):
    root, lay = env
    text = smtrees.read(root, lay.hook_files[0]).decode("utf-8")
    lines = hook.split_lines(text)
    i = hook.find_anchor(lines, hook.load_spec(), lay.hook_files[0])
    assert lines[i].startswith("    def load(self, sr_uuid)")
    # the next lines are the body of the iSCSI driver's load (its probe handling)
    assert "if not sr_uuid" in "".join(lines[i + 1:i + 4])


def test_an_sm_update_that_drops_the_hook_is_detected_and_repaired(sm_source, env):
    root, lay = env
    driver = lay.hook_files[0]
    original = smtrees.read(root, driver)
    assert _cli(["enable"], root)[0] == 0
    with open(os.path.join(root, driver), "wb") as f:   # what an sm hotfix does
        f.write(original)
    rc, out = _cli(["check"], root)
    assert rc == 1 and "hook missing" in out, out
    assert _cli(["enable"], root)[0] == 0
    assert _cli(["check"], root)[0] == 0


def test_sm_update_across_the_lvhd_to_lvm_rename(tmpdir):
    """XCP-ng 8.3's April 2026 sm update: LVHDoISCSISR.py goes, LVMoISCSISR.py comes,
    the launcher symlink moves. check sees the hook gone, enable hooks the new file,
    disable leaves exactly the new sm."""
    old, new = smdom0.source("xcpng-8.3-2025"), smdom0.source("xcpng-8.3")
    root = smdom0.lay_out(old, str(tmpdir.join("root")))
    assert _cli(["enable"], root)[0] == 0
    for rel, _target in smdom0.manifest_entries(old.manifest):   # rpm -U: old files out, new in
        os.unlink(os.path.join(root, rel))
    smdom0.lay_out(new, root, lvm=None)
    reference = smdom0.lay_out(new, str(tmpdir.join("reference")), lvm=None)
    rc, out = _cli(["check"], root)
    assert rc == 1 and "hook missing in /opt/xensource/sm/LVMoISCSISR.py" in out, out
    assert _cli(["enable"], root)[0] == 0
    assert b"RBDSR-HOOK-BEGIN" in smtrees.read(root, "opt/xensource/sm/LVMoISCSISR.py")
    assert _cli(["check"], root)[0] == 0
    assert _cli(["disable"], root)[0] == 0
    sm_dir = "opt/xensource/sm"
    assert smtrees.diff_states(smtrees.tree_state(os.path.join(reference, sm_dir)),
                               smtrees.tree_state(os.path.join(root, sm_dir))) == []


def test_a_hooked_file_behind_a_symlink_stays_a_symlink(sm_source, env):
    """The hooked .py itself a symlink (/opt/xensource/sm/LVMoISCSISR.py ->
    /usr/lib/sm/LVMoISCSISR.py): only the real file changes, byte-exactly back."""
    root, lay = env
    hooked = lay.hook_files[0]
    real = "usr/lib/sm-real/" + os.path.basename(hooked)
    os.makedirs(os.path.join(root, os.path.dirname(real)))
    os.rename(os.path.join(root, hooked), os.path.join(root, real))
    os.symlink("/" + real, os.path.join(root, hooked))
    assert layout.detect(root, hook.load_spec()).hook_files == [real]
    before = smtrees.tree_state(root)
    rc, out = _cli(["enable"], root)
    assert rc == 0, out
    after = smtrees.tree_state(root)
    assert after[hooked] == before[hooked] == ("link", "/" + real, 0)
    assert smtrees.read(root, real).count(b"# RBDSR-HOOK-BEGIN") == 1
    assert _cli(["check"], root)[0] == 0
    rc, out = _cli(["disable"], root)
    assert rc == 0, out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
