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
