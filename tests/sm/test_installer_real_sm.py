"""The installer on a copy of a real sm tree (SM_SRC): enable, check, disable
round trip byte-identical, and the hooked LVHDoISCSISR still compiles."""
import os
import py_compile
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "unit"))

import smtrees  # noqa: E402
from smtrees import read, run_cli  # noqa: E402
from rbdsr.installer import fingerprints, hook  # noqa: E402

# SM_SRC: one sm source tree, or several separated by os.pathsep (as tests/sm/realsm.py reads it)
SM_SRCS = [s for s in os.environ.get("SM_SRC", "").split(os.pathsep) if s]
pytestmark = pytest.mark.skipif(not SM_SRCS, reason="SM_SRC is not set (point it at an sm source tree, "
                                                    "e.g. SM_SRC=/work/ref/sm-8.3)")


@pytest.fixture(params=SM_SRCS or [None])
def env(request, tmpdir):
    root = str(tmpdir.join("root"))
    release = str(tmpdir.join("release"))
    layout, driver = smtrees.build_tree_from_sm(root, request.param)
    smtrees.make_release(release)
    return root, release, layout, driver


def test_round_trip_on_the_real_sm_tree(env, tmpdir):
    root, release, layout, driver = env
    before = smtrees.tree_state(root)
    original = read(root, driver)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    assert "sm layout %s" % layout in out
    hooked = read(root, driver)
    assert hooked.count(b"# RBDSR-HOOK-BEGIN") == 1
    # the hooked file compiles, and is the original plus the block only
    py_compile.compile(os.path.join(root, driver), cfile=str(tmpdir.join("x.pyc")), doraise=True)
    assert hook.strip(hooked.decode("utf-8")) == original.decode("utf-8")
    assert len(hooked.splitlines()) == len(original.splitlines()) + \
        len(hook.load_spec().block("1.0.0").splitlines())
    assert [s for _p, s, _h in fingerprints(root)] == ["hooked"]
    rc, out = run_cli(["check"], root, release)
    assert rc == 0, out
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0, out
    assert read(root, driver) == original
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_the_anchor_is_where_the_design_says(env):
    root, _release, _layout, driver = env
    spec = hook.load_spec()
    text = read(root, driver).decode("utf-8")
    lines = hook.split_lines(text)
    i = hook.find_anchor(lines, spec, driver)
    assert lines[i].startswith("    def load(self, sr_uuid)")
    # the next lines are the body of LVHDoISCSISR.load (its probe handling)
    assert "if not sr_uuid" in "".join(lines[i + 1:i + 4])
