"""Top-level pytest configuration: every test lives in a tier directory and
gets that tier's marker, so `-m unit` / `-m ceph` select whole tiers."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# The Ceph dev-cluster fixtures (tests/cephfixture.py) serve the ceph and vm tiers.
pytest_plugins = ["tests.cephfixture"]

_TIERS = ("unit", "ceph", "vm", "sm")


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = os.path.relpath(str(item.fspath), os.path.join(ROOT, "tests"))
        tier = rel.split(os.sep)[0]
        if tier in _TIERS:
            item.add_marker(getattr(pytest.mark, tier))
