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
    import importlib.abc
    import importlib.machinery

    class _PatchXsErrors(importlib.abc.MetaPathFinder):
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
