"""`RBDSR.py version`: works with no sm at all, names the sm shape found."""
import os
import subprocess
import sys

import pytest

import driverharness as h
from rbdsr.version import read_version


def run_version(pythonpath):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.Popen([sys.executable, os.path.join(h.ROOT, "RBDSR.py"), "version"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            env=env, cwd="/")
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


@pytest.mark.skipif(os.path.exists("/opt/xensource/sm"), reason="this machine has a flat sm")
def test_version_without_sm():
    rc, out, err = run_version([])
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "RBDSR %s" % read_version()
    assert lines[1] == "sm shape: none"
    assert any(line.startswith("hook") for line in lines[2:]), out
    assert "Traceback" not in out + err


@pytest.mark.parametrize("layout", ["flat", "package"])
def test_version_names_the_layout(tmp_path, layout):
    tree = h.SMTree(str(tmp_path), layout, hook=False)
    rc, out, err = run_version([tree.pythonpath, h.XAPI_STUB])
    assert rc == 0, err
    assert out.splitlines()[0] == "RBDSR %s" % read_version()
    shape = {"flat": "lvhd", "package": "package"}[layout]  # the stand-in's flat tree has LVHD names
    assert out.splitlines()[1].startswith("sm shape: %s (" % shape), out



def test_fingerprint_lines():
    from rbdsr.smglue.versioncli import fingerprint_lines as lines
    assert lines([]) == ["hook fingerprints: none installed"]
    assert lines([("opt/xensource/sm/LVHDoISCSISR.py", "hooked", "0123456789ab")]) == [
        "hook opt/xensource/sm/LVHDoISCSISR.py: hooked 0123456789ab"]
    assert lines({"a": "x"}) == ["hook a: x"]
