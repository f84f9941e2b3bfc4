"""Everything that ships to dom0 must compile and import on dom0's Python 3.6
(this file runs in both the 3.6 and the 3.11 unit tiers) and pass vermin's
3.6 check and ruff (3.11 tier, where those tools are installed)."""
import os
import py_compile
import shutil
import subprocess
import sys

import pytest

from tests.dom0files import ROOT, dom0_files, dom0_modules

VENV_BIN = os.path.dirname(sys.executable)


def _tool(name):
    path = os.path.join(VENV_BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


def test_there_are_dom0_files():
    files = dom0_files()
    assert "rbdsr/__init__.py" in files
    assert len(files) >= 3


@pytest.mark.parametrize("path", dom0_files())
def test_compiles(path, tmp_path):
    py_compile.compile(os.path.join(ROOT, path), cfile=str(tmp_path / "x.pyc"), doraise=True)


@pytest.mark.parametrize("module", dom0_modules())
def test_imports_in_fresh_interpreter(module):
    # A fresh process, so one module's import side effects cannot hide another's.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import %s" % module],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


@pytest.mark.skipif(_tool("vermin") is None, reason="vermin is installed in the 3.11 tier only")
def test_vermin_python36_clean():
    files = [os.path.join(ROOT, f) for f in dom0_files()]
    proc = subprocess.Popen(
        [_tool("vermin"), "-t=3.6-", "--no-tips", "--violations", "--eval-annotations"] + files,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


@pytest.mark.skipif(_tool("ruff") is None, reason="ruff is installed in the 3.11 tier only")
def test_ruff_clean():
    proc = subprocess.Popen(
        [_tool("ruff"), "check", "--no-cache", "."],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
