"""Loaded at interpreter start-up when tests/sm/stubs is on PYTHONPATH: sm's
util.SMlog writes through syslog, which is built into some Pythons and cannot
be shadowed on the path, so the module is replaced here by the file-writing
stand-in next to this file."""
import importlib.util
import os
import sys

_spec = importlib.util.spec_from_file_location(
    "syslog", os.path.join(os.path.dirname(os.path.abspath(__file__)), "syslog.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
sys.modules["syslog"] = _mod

# The package tree's error table sits under the test's dom0 root, not in /usr/share/sm:
# point sm.core.xs_errors at it once it is imported (a module constant read at call time).
_ERRORS = os.environ.get("RBDSR_TEST_SM_ERRORS")
if _ERRORS:
    # a plain finder object (no importlib.abc: that import alone costs ~25 ms of every
    # driver run on Python 3.11, which the benchmarks would charge to the driver)
    import importlib.machinery

    class _PatchXsErrors(object):
        def find_spec(self, name, path, target=None):
            if name != "sm.core.xs_errors":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None:
                return None
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                module.XML_DEFS = _ERRORS
            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _PatchXsErrors())

# bench/: RBDSR_EXEC_LOG=<file> appends one line per command the process starts (sm's
# util.pread, RBDSR's lvm_helpers, ...), so a benchmark can count LVM commands per call.
_EXEC_LOG = os.environ.get("RBDSR_EXEC_LOG")
if _EXEC_LOG and hasattr(sys, "addaudithook"):
    def _log_exec(event, args):
        if event == "subprocess.Popen":
            argv = args[1] if isinstance(args[1], (list, tuple)) else [args[1] or args[0]]
            with open(_EXEC_LOG, "a") as f:
                f.write("%d %s\n" % (os.getpid(), " ".join(str(a) for a in argv)[:300]))
    sys.addaudithook(_log_exec)
