"""The installer and dom0's LVM: the udev rule, "rbd" in lvmlocal.conf of /etc/lvm and
/etc/lvm/master, judged by the real lvmconfig. Every LVM file a run leaves behind is
loaded with `lvmconfig --validate`; check asks LVM; disable is byte-exact.

Adversarial lvmlocal.conf inputs (issue 13 "High") and dom0's shipped /etc/lvm, both
variants (tests/shippedlvm.py)."""
import os
import shutil
import subprocess

import pytest

import smtrees
from lvm_helpers import lvmconf as lvmtext
from lvm_helpers import lvmview
from rbdsr.installer import udevrule
from rbdsr.installer.manifest import Manifest
from smtrees import make_env, read, run_cli
from tests import shippedlvm

DIRS = ("etc/lvm", "etc/lvm/master")
LVMCONFIG = shutil.which("lvmconfig") or "/usr/sbin/lvmconfig"


def lvmconfig(system_dir, *args):
    env = dict(os.environ, LVM_SYSTEM_DIR=system_dir, LVM_SUPPRESS_FD_WARNINGS="1")
    assert os.path.exists(LVMCONFIG), "the unit tier needs lvm2's lvmconfig (apt-get install lvm2)"
    p = subprocess.run([LVMCONFIG] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=env, timeout=30)
    return p.returncode, p.stdout, p.stderr


def assert_valid(system_dir):
    """LVM loads and validates the directory; returns its devices settings."""
    rc, out, err = lvmconfig(system_dir, "--validate")
    assert rc == 0, "lvmconfig --validate in %s: %s" % (system_dir, err)
    rc, out, err = lvmconfig(system_dir, "--type", "full", "devices")
    assert rc == 0, err
    return lvmview.parse_section(out)


def lvm_files(root):
    return {rel: read(root, rel) for d in DIRS for rel in (d + "/lvm.conf", d + "/lvmlocal.conf")
            if os.path.exists(os.path.join(root, rel))}


def env_with(tmpdir, variant, local=None, master_local=None):
    """(root, release) with /etc/lvm of `variant` ('fixture': the sm-tree fixture's own)
    and the given lvmlocal.conf texts (None: as the variant has it)."""
    root, release = make_env(tmpdir, "flat")
    if variant != "fixture":
        if shippedlvm.variant_dir(variant) is None:
            pytest.skip("no shipped /etc/lvm: ../shared/lvm is not beside this checkout")
        shippedlvm.lay(os.path.join(root, "etc/lvm"), variant)
    for rel, text in (("etc/lvm/lvmlocal.conf", local), ("etc/lvm/master/lvmlocal.conf", master_local)):
        if text is not None:
            with open(os.path.join(root, rel), "wb") as f:
                f.write(text.encode())
    return root, release


# The lvmlocal.conf texts enable must cope with (written to both directories).
ADVERSARIAL = {
    # issue 13 High: an active multi-line list whose last element line ends in a comment
    "comment-after-last-element": 'devices {\n\ttypes = [ "fd", 16,\n\t\t"nvme", 64   # NVMe, see docs ]\n\t]\n}\n',
    "comment-after-bracket": 'devices {\n\ttypes = [ "fd", 16 ] # the { # ] kind\n}\n',
    "single-quoted": "devices {\n\tfilter = [ 'a|{ # ]|', \"a|.*|\" ]\n\ttypes = [ 'fd', 16 ]  # '{ # ]'\n}\n",
    "tabs": "devices\t{\n\t\ttypes\t=\t[\t\"fd\",\t16\t]\n\t}\n",
    "crlf": "local {\r\n}\r\ndevices {\r\n\ttypes = [ \"fd\", 16 ]\r\n}\r\n",
    "crlf-no-devices": "# local settings\r\nlocal {\r\n}\r\n",
    "types-in-lvmlocal": 'devices {\n    types = [ "fd", 16, "nvme", 64 ]\n}\n',
    "commented-out-rbd": ('# devices { types = [ "rbd", 1024 ] }\ndevices {\n'
                          '\t# types = [ "rbd", 1024 ]\n\tdata_alignment = 0\n}\n'),
    "no-final-newline": "local {\n}",
    "empty": "",
    "shipped": None,
}


@pytest.mark.parametrize("variant", ["ca-410086", "pre-ca-410086", "fixture"])
@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_enable_gives_lvm_rbd_then_disable_restores_every_byte(tmpdir, variant, case):
    text = ADVERSARIAL[case]
    root, release = env_with(tmpdir, variant, text, text)
    before_tree = smtrees.tree_state(root)
    before_lvm = lvm_files(root)
    before_types = {d: lvmview.type_names(assert_valid(os.path.join(root, d))) for d in DIRS}
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    for d in DIRS:
        devices = assert_valid(os.path.join(root, d))  # every file enable produced loads in LVM
        names = lvmview.type_names(devices)
        assert "rbd" in names and all(t in names for t in before_types[d]), (d, names)
        assert read(root, d + "/lvm.conf") == before_lvm[d + "/lvm.conf"]  # lvm.conf is not ours to edit
    assert read(root, udevrule.RULE) == udevrule.TEXT.encode()
    rc, out = run_cli(["check"], root, release)
    assert rc == 0, out
    assert "LVM with LVM_SYSTEM_DIR=/etc/lvm/master (under %s) sees RBD devices" % root in out
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0, out
    assert smtrees.diff_states(before_tree, smtrees.tree_state(root)) == []
    assert lvm_files(root) == before_lvm


def test_the_high_bug_text_edit_stays_loadable(tmpdir):
    """issue 13: `enable` wrote `64 # comment, "rbd", 1024 ]` (Parse error: expected a value)."""
    d = tmpdir.mkdir("lvm")
    text = 'devices {\n\ttypes = [ "fd", 16,\n\t\t"nvme", 64 # NVMe\n\t]\n}\n'
    d.join("lvm.conf").write(lvmtext.add_rbd_types(text))
    assert lvmview.type_names(assert_valid(str(d))) == ["fd", "nvme", "rbd"]
    assert lvmtext.remove_rbd_types(d.join("lvm.conf").read()) == text


def test_lvmlocal_with_rbd_already_is_left_alone(tmpdir):
    text = 'devices {\n\ttypes = [ "rbd", 1024 ]\n}\n'
    root, release = env_with(tmpdir, "fixture", text, text)
    before = smtrees.tree_state(root)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    assert read(root, "etc/lvm/lvmlocal.conf") == text.encode()
    assert run_cli(["check"], root, release)[0] == 0
    assert run_cli(["disable"], root, release)[0] == 0
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_master_lvmlocal_is_created_with_lvm_conf_modes_and_removed(tmpdir):
    root, release = env_with(tmpdir, "fixture")
    os.chmod(os.path.join(root, "etc/lvm/master/lvm.conf"), 0o600)
    assert not os.path.exists(os.path.join(root, "etc/lvm/master/lvmlocal.conf"))
    assert run_cli(["enable"], root, release)[0] == 0
    st = os.stat(os.path.join(root, "etc/lvm/master/lvmlocal.conf"))
    assert st.st_mode & 0o777 == 0o600
    assert run_cli(["disable"], root, release)[0] == 0
    assert not os.path.exists(os.path.join(root, "etc/lvm/master/lvmlocal.conf"))


# -- refusals: nothing changed ------------------------------------------------------

@pytest.mark.parametrize("local, setting", [
    ('devices {\n\tscan = [ "/dev/mapper" ]\n}\n', "devices/scan"),
    ('devices {\n\tfilter = [ "a|/dev/sda|", "r|.*|" ]\n}\n', "devices/filter"),
    ('devices {\n\tglobal_filter = [ "r|/rbdsr/|" ]\n}\n', "devices/global_filter"),
])
def test_enable_refuses_when_lvm_would_still_not_see_rbd(tmpdir, capsys, local, setting):
    root, release = env_with(tmpdir, "fixture", None, local)
    before = smtrees.tree_state(root)
    rc, _ = run_cli(["enable"], root, release)
    out = capsys.readouterr().err
    assert rc == 2, out
    assert "LVM in /etc/lvm/master (under %s) would still not see RBD devices: %s" % (root, setting) in out
    assert "nothing was changed" in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_enable_refuses_when_lvm_cannot_load_the_host_config(tmpdir, capsys):
    root, release = env_with(tmpdir, "fixture", 'devices {\n\ttypes = [ "fd", \n}\n')
    before = smtrees.tree_state(root)
    rc, _ = run_cli(["enable"], root, release)
    out = capsys.readouterr().err
    assert rc == 2, out
    assert "LVM cannot load the configuration in /etc/lvm (under %s) as it is" % root in out
    assert "Parse error" in out and "nothing was changed" in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_enable_refuses_a_candidate_lvm_rejects(tmpdir, capsys, monkeypatch):
    """The gate itself: whatever the text edit produces, LVM judges it before it is written."""
    root, release = env_with(tmpdir, "fixture")
    before = smtrees.tree_state(root)
    monkeypatch.setattr(lvmtext, "add_rbd_types", lambda text: text + 'devices {\n\ttypes = [ "rbd", \n}\n')
    rc, _ = run_cli(["enable"], root, release)
    out = capsys.readouterr().err
    assert rc == 2, out
    assert "LVM rejects the /etc/lvm (under %s)/lvmlocal.conf RBDSR would write" % root in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def test_enable_refuses_a_candidate_lvm_warns_about(tmpdir, capsys, monkeypatch):
    root, release = env_with(tmpdir, "fixture")
    monkeypatch.setattr(lvmtext, "add_rbd_types",
                        lambda text: text + 'devices {\n\ttypes = [ "rbd", 1024 ]\n\ttypes = [ "rbd", 1024 ]\n}\n')
    before = smtrees.tree_state(root)
    rc, _ = run_cli(["enable"], root, release)
    out = capsys.readouterr().err
    assert rc == 2 and "LVM warns about" in out, out
    assert "Ignoring duplicate config value: types" in out
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


# -- check asks LVM -----------------------------------------------------------------

def enabled(tmpdir, variant="fixture"):
    root, release = env_with(tmpdir, variant)
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    return root, release


def test_check_is_not_fooled_by_rbd_in_a_comment(tmpdir):
    root, release = enabled(tmpdir)
    with open(os.path.join(root, "etc/lvm/master/lvmlocal.conf"), "w") as f:
        f.write('devices {\n\t# types = [ "rbd", 1024 ]\n\tdata_alignment = 0 # "rbd", 1024\n}\n')
    rc, out = run_cli(["check"], root, release)
    assert rc == 1
    assert ('LVM with LVM_SYSTEM_DIR=/etc/lvm/master (under %s) would not see RBD devices: '
            'devices/types: unset does not list "rbd"' % root) in out


def test_check_fails_on_a_file_lvm_cannot_parse(tmpdir):
    root, release = enabled(tmpdir)
    with open(os.path.join(root, "etc/lvm/lvmlocal.conf"), "a") as f:
        f.write('devices {\n\ttypes = [ "fd", 16 # comment, "rbd", 1024 ]\n}\n')
    rc, out = run_cli(["check"], root, release)
    assert rc == 1
    assert "LVM cannot load its configuration in /etc/lvm (under %s): lvmconfig --validate" % root in out
    assert "Parse error" in out


def test_check_fails_when_a_filter_rejects_rbd(tmpdir):
    root, release = enabled(tmpdir)
    path = os.path.join(root, "etc/lvm/lvm.conf")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:  # an admin's "accept only sda"
        f.write(text.replace('filter = [ "r|/dev/nbd.*|", "a/.*/" ]', 'filter = [ "a|^/dev/sda|", "r|.*|" ]'))
    rc, out = run_cli(["check"], root, release)
    assert rc == 1
    assert ("LVM with LVM_SYSTEM_DIR=/etc/lvm (under %s) would not see RBD devices: devices/filter: r|.*| rejects"
            % root) in out


def test_check_fails_without_the_udev_rule(tmpdir):
    root, release = enabled(tmpdir)
    os.unlink(os.path.join(root, udevrule.RULE))
    rc, out = run_cli(["check"], root, release)
    assert rc == 1
    assert "65-rbdsr.rules (under %s) is missing or not RBDSR's" % root in out


@pytest.mark.parametrize("variant", ["ca-410086", "pre-ca-410086"])
def test_check_fails_on_shipped_lvm_without_rbdsr(tmpdir, variant):
    """The reported failure: dom0's LVM as shipped does not see an RBD device."""
    root, release = env_with(tmpdir, variant)
    rc, out = run_cli(["check"], root, release)
    assert rc == 1
    for d in ("/etc/lvm", "/etc/lvm/master"):
        assert ("LVM with LVM_SYSTEM_DIR=%s (under %s) would not see RBD devices: devices/types" % (d, root)) in out
    assert "devices/scan" not in out  # the driver's link is under /dev/disk/by-id


# -- later changes ------------------------------------------------------------------

def test_disable_takes_only_our_block_out_of_a_changed_lvmlocal(tmpdir):
    root, release = enabled(tmpdir, "fixture")
    path = os.path.join(root, "etc/lvm/master/lvmlocal.conf")
    with open(path, "a") as f:
        f.write("# an admin's setting\nglobal {\n\tumask = 077\n}\n")
    rc, out = run_cli(["disable"], root, release)
    assert rc == 0, out
    assert read(root, "etc/lvm/master/lvmlocal.conf") == b"# an admin's setting\nglobal {\n\tumask = 077\n}\n"
    assert_valid(os.path.join(root, "etc/lvm/master"))


def test_disable_does_not_write_an_lvmlocal_lvm_would_refuse(tmpdir):
    """lvm2 refuses a config file that holds nothing but comments: taking our block out of
    this changed file would leave just that, so it stays as it is and disable says why."""
    root, release = enabled(tmpdir, "fixture")
    path = os.path.join(root, "etc/lvm/master/lvmlocal.conf")
    with open(path, "a") as f:
        f.write("# an admin's note\n")
    kept = read(root, "etc/lvm/master/lvmlocal.conf")
    rc, out = run_cli(["disable"], root, release)
    assert rc == 1, out
    assert "LVM would not load /etc/lvm/master (under %s) with that change" % root in out
    assert "left in place: /etc/lvm/master/lvmlocal.conf" in out
    assert read(root, "etc/lvm/master/lvmlocal.conf") == kept
    assert_valid(os.path.join(root, "etc/lvm/master"))


def test_upgrade_from_a_release_that_edited_lvm_conf(tmpdir):
    """An older release put its marked types entry into lvm.conf: enable moves it to
    lvmlocal.conf (lvm.conf back to its original), disable restores everything."""
    root, release = env_with(tmpdir, "fixture")
    before = smtrees.tree_state(root)
    m = Manifest.load(root)
    for d in DIRS:
        rel = d + "/lvm.conf"
        orig = read(root, rel)
        new = lvmtext.add_rbd_types(orig.decode()).encode()
        m.record_original(rel, "lvmconf", orig, smtrees_meta(root, rel))
        m.files[rel]["sha256"] = _sha(new)
        with open(os.path.join(root, rel), "wb") as f:
            f.write(new)
    m.data["version"] = "0.9.0"
    m.save()
    rc, out = run_cli(["enable"], root, release)
    assert rc == 0, out
    for d in DIRS:
        assert read(root, d + "/lvm.conf") == _state_bytes(before, root, d + "/lvm.conf")
        assert "rbd" in lvmview.type_names(assert_valid(os.path.join(root, d)))
    assert run_cli(["check"], root, release)[0] == 0
    assert run_cli(["disable"], root, release)[0] == 0
    assert smtrees.diff_states(before, smtrees.tree_state(root)) == []


def smtrees_meta(root, rel):
    st = os.stat(os.path.join(root, rel))
    return (st.st_mode & 0o7777, st.st_uid, st.st_gid)


def _sha(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def _state_bytes(before, root, rel):
    data = lvmtext.remove_rbd_types(read(root, rel).decode()).encode()
    assert _sha(data) == before[rel][1]
    return data
