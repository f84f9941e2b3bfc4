"""Interrupted and failing enables: a kill after any step is completed by the
next enable and undone by disable; a write or rename failing at any point
(full disk, read-only file system) leaves the host as it was."""
import errno

import pytest

import smtrees
from smtrees import make_env, run_child, run_cli
from rbdsr.installer import enable as enable_mod
from rbdsr.installer import fileops

LAYOUTS = ["flat", "package"]
STEPS = list(enable_mod.STEPS)


def test_steps_are_the_documented_list():
    assert STEPS[0] == "state" and STEPS[-1] == "finish"
    assert STEPS.index("hook") > STEPS.index("files")  # sm never points at code not yet there
    assert STEPS.index("hook") > STEPS.index("pth")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("step", STEPS)
def test_killed_enable_is_completed_by_the_next_enable(tmpdir, layout, step):
    root, release = make_env(tmpdir, layout)
    rc, _out, err = run_child(["enable"], root, release, {enable_mod.STOP_ENV: step})
    assert rc == enable_mod.STOP_EXIT, err
    rc, out = run_cli(["check"], root, release)
    if step == "finish":  # the manifest was saved complete before the kill
        assert rc == 0, out
    else:
        assert rc == 1 and "did not finish" in out
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    rc, out = run_cli(["check"], root, release)
    assert rc == 0, out
    # the same tree as an uninterrupted enable
    ref_root, _ = make_env(tmpdir.mkdir("ref"), layout)
    assert run_cli(["enable"], ref_root, release)[0] == 0
    got, ref = smtrees.tree_state(root), smtrees.tree_state(ref_root)
    assert smtrees.diff_states(ref, got) == []


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("step", STEPS)
def test_killed_enable_is_fully_undone_by_disable(tmpdir, layout, step):
    root, release = make_env(tmpdir, layout)
    before = smtrees.tree_state(root)
    rc, _out, err = run_child(["enable"], root, release, {enable_mod.STOP_ENV: step})
    assert rc == enable_mod.STOP_EXIT, err
    rc, out, err = run_child(["disable"], root, release)
    assert rc == 0, out + err
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


class _Fault(object):
    """Fail the k-th operation of `kind` (and every later one when persistent)."""

    def __init__(self, kind, k, err, persistent=False):
        self.kind, self.k, self.err, self.persistent = kind, k, err, persistent
        self.count = 0
        self.fired = False

    def __call__(self, op, path):
        if op != self.kind:
            return
        self.count += 1
        if self.count == self.k or (self.persistent and self.count > self.k):
            self.fired = True
            raise OSError(self.err, "%s (injected)" % errno.errorcode[self.err], path)


def _count_ops(tmpdir, layout, kind):
    root, release = make_env(tmpdir.mkdir("count"), layout)
    counter = _Fault(kind, 10 ** 9, errno.ENOSPC)
    fileops.FAULT = counter
    try:
        assert run_cli(["enable"], root, release)[0] == 0
    finally:
        fileops.FAULT = None
    return counter.count


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind,err,persistent", [("write", errno.ENOSPC, False), ("write", errno.ENOSPC, True),
                                                 ("rename", errno.EROFS, False)],
                         ids=["enospc-once", "disk-full", "rename-erofs"])
def test_failure_at_any_write_leaves_the_host_as_it_was(tmpdir, capsys, monkeypatch, layout, kind, err,
                                                       persistent):
    monkeypatch.setattr(fileops, "DURABLE", False)  # hundreds of writes: logic, not durability, is tested
    total = _count_ops(tmpdir, layout, kind)
    assert total > 10
    for k in range(1, total + 1):
        d = tmpdir.mkdir("k%d" % k)
        root, release = make_env(d, layout)
        before = smtrees.tree_state(root)
        fault = _Fault(kind, k, err, persistent)
        fileops.FAULT = fault
        try:
            rc, out = run_cli(["enable"], root, release)
        finally:
            fileops.FAULT = None
        msg = capsys.readouterr().err
        assert fault.fired
        assert rc == 2, (k, out)
        assert "the host was left as it was" in msg, (k, msg)
        assert smtrees.diff_states(before, smtrees.tree_state(root)) == [], (k, out, msg)


def test_failure_on_an_enabled_host_keeps_it_repairable(tmpdir, capsys):
    root, release = make_env(tmpdir, "flat")
    before = smtrees.tree_state(root)
    assert run_cli(["enable"], root, release)[0] == 0
    release2 = str(tmpdir.join("release2"))
    smtrees.make_release(release2, version="1.1.0")
    fileops.FAULT = _Fault("write", 3, errno.ENOSPC)
    try:
        rc, _out = run_cli(["enable"], root, release2)
    finally:
        fileops.FAULT = None
    assert rc == 2 and "re-run enable, or disable" in capsys.readouterr().err
    assert run_cli(["enable"], root, release2)[0] == 0
    assert run_cli(["check"], root, release2)[0] == 0
    assert run_cli(["disable"], root, release2)[0] == 0
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
