"""The whole SR and VDI lifecycle through REAL sm on a real kernel, per (sm tree of
../shared/sm, dom0 LVM config) in realdom0.LIFECYCLES: the steps are in
realsm_lifecycle.lifecycle (the sandbox runs the same), each one timed into
/results/realsm-steps-<tree>-lvm-<config>.json."""
import os

import pytest

import realdom0
import realsm_lifecycle


@pytest.fixture(scope="module", autouse=True)
def needs_shared():
    if not os.path.isdir(realdom0.SM_TREES):
        if os.environ.get("CI"):
            pytest.fail("no real sm trees at %s: CI always has ../shared beside its clone" % realdom0.SM_TREES)
        pytest.skip("no real sm trees at %s (a clone without ../shared)" % realdom0.SM_TREES)
    assert os.access("/usr/bin/vhd-util", os.X_OK), \
        "the VM image has no /usr/bin/vhd-util (built from ../shared/blktap by tools/vmlab/imagebuild.py)"


@pytest.mark.parametrize("tree_id,lvm,full", realdom0.LIFECYCLES,
                         ids=["%s-lvm-%s%s" % (t, lvm or "shipped", "" if full else "-short")
                              for t, lvm, full in realdom0.LIFECYCLES])
def test_realsm_lifecycle(tree_id, lvm, full, ceph, vm_results_dir, tmp_path):
    steps = realsm_lifecycle.run(tree_id, lvm, ceph, vm_results_dir, str(tmp_path), full=full)
    assert steps.rows and all(r["result"] == "ok" for r in steps.rows), steps.rows
