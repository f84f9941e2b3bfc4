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


FAKESM = [os.path.join(ROOT, "tests", "fakesm", "flat"), os.path.join(ROOT, "tests", "fakesm", "xapi")]


def _needs_sm(module):
    """Only the SM glue may import sm; the core must import without it."""
    return module == "RBDSR" or module.startswith("rbdsr.smglue")


def _import_in_fresh_interpreter(module, extra_path):
    # A fresh process, so one module's import side effects cannot hide another's.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(extra_path + [ROOT])
    env["SMLOG"] = os.devnull
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; import %s; "
         "print([m for m in sys.modules if m in ('SR', 'LVHDSR', 'util', 'sm')])" % module],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


# Modules that need the Ceph Python bindings, which Debian builds for its own
# python3 only (on dom0 they are optional: open_backend() says what is missing).
NEEDS_RADOS = ("rbdsr.backends.librbd", "rbdsr.admin.ops")


def _have_rados():
    try:
        import rados  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("module", [m for m in dom0_modules() if not _needs_sm(m)])
def test_core_imports_without_sm(module):
    if module in NEEDS_RADOS and not _have_rados():
        pytest.skip("python3-rados/rbd are not built for this Python; %s is compile-checked here" % module)
    out = _import_in_fresh_interpreter(module, [])
    assert out.strip().splitlines()[-1] == "[]", "%s pulled in sm modules: %s" % (module, out)


@pytest.mark.parametrize("module", [m for m in dom0_modules() if _needs_sm(m)])
def test_sm_glue_imports_with_the_sm_stand_in(module):
    _import_in_fresh_interpreter(module, FAKESM)


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
