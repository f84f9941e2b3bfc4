"""The sm tier runs on every real sm tree there is (tests/smdom0.py): ../shared/sm
beside the repository (all four, today's XCP-ng 8.3 first) or SM_SRC. A tree
that is there but unusable fails the tier; no trees at all is said plainly
(tools/run-tests reports the tier as not run, never as passed)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import smdom0  # noqa: E402

SOURCES = smdom0.sources()
if not SOURCES and os.environ.get("CI"):
    # CI always has ../shared beside its clone: no trees there is a broken run, not a skip
    raise smdom0.TreeError(smdom0.why_none())


def pytest_generate_tests(metafunc):
    if "sm_source" in metafunc.fixturenames:
        metafunc.parametrize("sm_source", SOURCES, ids=[s.name for s in SOURCES], scope="module")


def pytest_collection_modifyitems(config, items):
    if not SOURCES:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=smdom0.why_none()))
