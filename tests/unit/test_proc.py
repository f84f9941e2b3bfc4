"""rbdsr.proc: bounded subprocesses whose argv never holds a secret."""
import os
import sys
import time

import pytest

from rbdsr.errors import RBDError, TimeoutError_
from rbdsr.proc import check_argv, run
from rbdsr.secret import Secret


def test_run_ok():
    res = run([sys.executable, "-c", "import sys; print('out'); sys.stderr.write('err'); sys.exit(3)"], 30)
    assert (res.rc, res.out.strip(), res.err) == (3, "out", "err")


def test_secret_goes_through_stdin():
    s = Secret("stdin-secret-value-123")
    res = run([sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"], 30, input=s)
    assert res.out.strip() == "stdin-secret-value-123"[::-1]


def test_refuses_secret_on_argv():
    s = Secret("argv-secret-value-456")
    with pytest.raises(RBDError) as e:
        run(["echo", s], 5)
    assert "argv-secret" not in str(e.value)
    with pytest.raises(RBDError):
        run(["echo", "--key=" + s.reveal()], 5)
    with pytest.raises(RBDError):
        check_argv(["x", "prefix-argv-secret-value-456"])
    check_argv(["echo", "harmless"])


def test_timeout_kills_the_group():
    t0 = time.monotonic()
    with pytest.raises(TimeoutError_) as e:
        # a child that forks a grandchild: both must die
        run(["sh", "-c", "sleep 30 & sleep 30"], 1)
    assert time.monotonic() - t0 < 10
    assert "within 1s" in str(e.value)


def test_missing_binary():
    with pytest.raises(RBDError, match="cannot run"):
        run(["/nonexistent/binary"], 5)


def test_no_leftover_children():
    before = set(os.listdir("/proc"))
    with pytest.raises(TimeoutError_):
        run(["sleep", "30"], 0.5)
    time.sleep(0.2)
    for pid in set(os.listdir("/proc")) - before:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                assert f.read() != b"sleep\x0030\x00"
        except OSError:
            pass
