"""install_rbdsr.py rehook: the rbdsr RPM's sm triggers. Re-applies the hook an
sm update removed, logs what it did, and exits 0 even when it cannot."""
import os
import syslog

import pytest
import smtrees
from smtrees import make_env, run_cli

from rbdsr.installer import rehook as rehookmod


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(rehookmod, "log", lambda prio, msg: lines.append((prio, msg)))
    return lines


def sm_update(root, text=None):
    """What rpm -U sm does to the hooked file: the package's bytes back in place."""
    with open(os.path.join(root, smtrees.FLAT_DRIVER), "w") as f:
        f.write(smtrees.flat_driver_text() if text is None else text)


def test_rehook_after_an_sm_update(tmpdir, logged):
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    sm_update(root)
    assert run_cli(["check"], root, release)[0] == 1
    rc, out = run_cli(["rehook", "--why", "sm 3.2.12-2 installed"], root, release)
    assert rc == 0
    assert "re-applied the RBDSR hook" in out, out
    assert run_cli(["check"], root, release)[0] == 0
    notices = [m for p, m in logged if p == syslog.LOG_NOTICE]
    assert notices[0].startswith("sm 3.2.12-2 installed: re-applying RBDSR: hook missing"), logged
    assert "re-applied the RBDSR hook (hook 1.0.0 in /opt/xensource/sm/LVHDoISCSISR.py" in notices[-1], logged


def test_rehook_with_nothing_to_do(tmpdir, logged):
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    before = smtrees.tree_state(root)
    rc, out = run_cli(["rehook"], root, release)
    assert rc == 0 and "nothing to do" in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []
    assert [p for p, _ in logged] == [syslog.LOG_INFO]


def test_rehook_that_cannot_hook_exits_0_loudly(tmpdir, logged, capfd):
    """An sm update whose driver has no anchor: nothing is forced, the update's
    file stays as it came, the failure is on stderr and in the log, exit 0."""
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    odd = smtrees.flat_driver_text().replace("def load(self, sr_uuid)", "def load(self, uuid)")
    sm_update(root, odd)
    rc, _out = run_cli(["rehook", "--why", "sm 9.9 installed"], root, release)
    assert rc == 0
    err = capfd.readouterr().err
    assert "sm 9.9 installed: RE-HOOKING sm FAILED" in err and "expected exactly one line" in err, err
    assert [m for p, m in logged if p == syslog.LOG_ERR][0].startswith("sm 9.9 installed: RE-HOOKING sm FAILED")
    assert smtrees.read(root, smtrees.FLAT_DRIVER) == odd.encode()


def test_rehook_when_the_installer_cannot_start_exits_0_loudly(tmpdir, logged, capfd):
    """A failure before rehook runs (here: the sm layout is gone) still exits 0."""
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    os.unlink(os.path.join(root, "opt/xensource/sm/LVMoISCSISR"))
    rc, _out = run_cli(["rehook", "--why", "sm removed"], root, release)
    assert rc == 0
    assert "RE-HOOKING sm FAILED" in capfd.readouterr().err
    assert [p for p, _ in logged][-1] == syslog.LOG_ERR
