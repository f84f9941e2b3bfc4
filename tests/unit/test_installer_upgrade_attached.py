"""enable over an installed release replaces files one by one, so while RBD
SRs are attached on the host (RBD devices mapped) it refuses to swap them and
says how to proceed; re-enabling the same release (e.g. after an sm hotfix
dropped the hook) still works with SRs attached; --force swaps anyway."""
import os

import smtrees
from smtrees import make_env, read, run_cli


def _map_a_device(root):
    dev = os.path.join(root, "sys/bus/rbd/devices/0")
    os.makedirs(dev)
    for attr, value in (("pool", "rbd"), ("name", "sr-image")):
        with open(os.path.join(dev, attr), "w") as f:
            f.write(value + "\n")


def _installed_then_attached(tmpdir):
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    _map_a_device(root)
    release2 = str(tmpdir.join("release2"))
    smtrees.make_release(release2, version="1.1.0")
    return root, release, release2


def test_upgrade_while_srs_are_attached_is_refused_with_the_way_forward(tmpdir, capsys):
    root, _release, release2 = _installed_then_attached(tmpdir)
    before = smtrees.tree_state(root)
    rc, _out = run_cli(["enable"], root, release2)
    err = capsys.readouterr().err
    assert rc == 2
    assert "rbd0 (rbd/sr-image)" in err and "pbd-unplug" in err and "1.0.0" in err and "1.1.0" in err, err
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_same_release_re_enable_works_with_srs_attached(tmpdir):
    root, release, _release2 = _installed_then_attached(tmpdir)
    hooked = read(root, smtrees.FLAT_DRIVER)
    with open(os.path.join(root, smtrees.FLAT_DRIVER), "wb") as f:   # an sm hotfix drops the hook
        f.write(smtrees.flat_driver_text().encode())
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    assert read(root, smtrees.FLAT_DRIVER) == hooked


def test_force_swaps_while_attached_and_says_so(tmpdir):
    root, _release, release2 = _installed_then_attached(tmpdir)
    rc, out = run_cli(["enable", "--force"], root, release2)
    assert rc == 0, out
    assert "warning: --force: replacing" in out
    assert b"# RBDSR-HOOK-BEGIN 1.1.0" in read(root, smtrees.FLAT_DRIVER)


def test_upgrade_with_nothing_mapped_goes_ahead(tmpdir):
    root, release = make_env(tmpdir, "flat")
    assert run_cli(["enable"], root, release)[0] == 0
    release2 = str(tmpdir.join("release2"))
    smtrees.make_release(release2, version="1.1.0")
    assert run_cli(["enable"], root, release2)[0] == 0
