"""The hook text functions: insertion after the anchor, exact removal, refusals,
and the hooked class executed with stand-in sm modules."""
import json
import os
import subprocess
import sys

import pytest

import smtrees
from rbdsr.installer import hook

VERSION = "1.2.3"


@pytest.fixture(scope="module")
def spec():
    return hook.load_spec(os.path.join(smtrees.REPO, "patches"))


@pytest.mark.parametrize("text", [smtrees.flat_driver_text(), smtrees.package_driver_text()],
                         ids=["flat", "package"])
def test_apply_then_strip_gives_the_original_back(spec, text):
    hooked = hook.apply(text, spec, VERSION)
    assert hooked != text
    assert hook.strip(hooked) == text
    assert hook.state(hooked, spec, VERSION) == "hooked"
    assert hook.state(text, spec, VERSION) == "absent"
    assert hook.compiles(hooked, "x.py") is None
    # the block sits right after the anchor, 8-space indented, markers included
    lines = hooked.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith("    def load(self, sr_uuid)"))
    assert lines[i + 1] == "        # RBDSR-HOOK-BEGIN " + VERSION
    end = lines.index("        # RBDSR-HOOK-END")
    assert all(ln.startswith("        ") for ln in lines[i + 1:end + 1])
    # the rule is asked, never restated: rbdsr.diversion is its one home
    assert "from rbdsr.diversion import wants_rbd" in "\n".join(lines[i + 1:end])
    assert "6789" not in "\n".join(lines[i + 1:end])


def test_apply_is_idempotent_and_replaces_an_older_block(spec):
    text = smtrees.flat_driver_text()
    once = hook.apply(text, spec, VERSION)
    assert hook.apply(once, spec, VERSION) == once
    old = hook.apply(text, spec, "0.9.0")
    assert hook.state(old, spec, VERSION) == "outdated"
    assert hook.apply(old, spec, VERSION) == once


def test_crlf_file_keeps_its_line_endings(spec):
    text = smtrees.package_driver_text().replace("\n", "\r\n")
    hooked = hook.apply(text, spec, VERSION)
    assert "\n" not in hooked.replace("\r\n", "")
    assert hook.strip(hooked) == text


def test_anchor_missing_is_refused(spec):
    text = smtrees.package_driver_text().replace("def load(self, sr_uuid):", "def load(self, uuid):")
    with pytest.raises(hook.HookError) as e:
        hook.apply(text, spec, VERSION, "/x/LVHDoISCSISR.py")
    assert "/x/LVHDoISCSISR.py" in str(e.value) and "found 0" in str(e.value)
    assert "def load" in str(e.value)


def test_anchor_duplicated_in_class_is_refused(spec):
    text = smtrees.package_driver_text().replace(
        "    def create_iscsi_sessions(self, sr_uuid):",
        "    def load(self, sr_uuid):\n        pass\n\n    def create_iscsi_sessions(self, sr_uuid):")
    with pytest.raises(hook.HookError) as e:
        hook.apply(text, spec, VERSION)
    assert "found 2" in str(e.value)


def test_anchor_outside_the_class_does_not_count(spec):
    text = smtrees.package_driver_text() + "\n\nclass Other(object):\n    def load(self, sr_uuid):\n        pass\n"
    hooked = hook.apply(text, spec, VERSION)
    assert hooked.index("RBDSR-HOOK-BEGIN") < hooked.index("class LVHDoISCSIVDI")
    assert hook.strip(hooked) == text


def test_class_missing_is_refused(spec):
    text = smtrees.package_driver_text().replace("class LVHDoISCSISR(", "class Renamed(")
    with pytest.raises(hook.HookError) as e:
        hook.apply(text, spec, VERSION)
    assert "class LVHDoISCSISR" in str(e.value)


@pytest.mark.parametrize("mangle", ["drop_end", "double_begin"])
def test_broken_markers_are_refused(spec, mangle):
    hooked = hook.apply(smtrees.flat_driver_text(), spec, VERSION)
    if mangle == "drop_end":
        bad = hooked.replace("        # RBDSR-HOOK-END\n", "")
    else:
        bad = hooked + "# RBDSR-HOOK-BEGIN 9\n"
    with pytest.raises(hook.HookError):
        hook.strip(bad)
    assert hook.state(bad, spec, VERSION) == "broken"


def test_the_template_and_anchor_file_agree(spec):
    with open(os.path.join(smtrees.REPO, "patches", "anchors.json")) as f:
        data = json.load(f)
    assert data["format"] == 2 and "class" not in data  # the class is the shape's (rbdsr.smglue.shapes)
    assert spec.class_names == ("LVHDoISCSISR", "LVMoISCSISR")
    assert spec.anchor_re.match("    def load(self, sr_uuid) -> None:")
    assert spec.anchor_re.match("    def load(self, sr_uuid):  ")
    assert not spec.anchor_re.match("        def load(self, sr_uuid):")
    block = spec.block(VERSION)
    assert block.splitlines()[0] == "        # RBDSR-HOOK-BEGIN " + VERSION
    assert block.splitlines()[-1] == "        # RBDSR-HOOK-END"


_RUNNER = r'''
import json, sys
stubs, fake, mod, port, rbd = sys.argv[1:6]
sys.path[:0] = [stubs, fake, "/usr/lib/rbdsr"]   # /usr/lib/rbdsr present: the hook must not move it
import importlib
m = importlib.import_module(mod)
cls = m.LVHDoISCSISR
sr = cls.__new__(cls)
sr.dconf = {"target": "10.0.0.1", "port": port}
if rbd:
    sr.dconf["rbd"] = rbd
class Cmd(object):
    cmd = "sr_attach"
sr.original_srcmd = Cmd()
result = sr.load("sr-uuid-1")
lvhd = sys.modules[mod.rsplit(".", 1)[0] + ".LVHDSR" if "." in mod else "LVHDSR"]
rbdsr_mods = sorted(n for n in sys.modules if n == "rbdsr" or n.startswith("rbdsr."))
print(json.dumps({"result": result, "rbdsr_imported": rbdsr_mods,
                  "divert_calls": getattr(sys.modules.get("rbdsr.smglue.divert"), "CALLS", None),
                  "lvhd_calls": lvhd.CALLS, "has_iscsi": hasattr(sr, "iscsi"),
                  "path_head": sys.path[:3], "path_tail": sys.path[-1]}))
'''


@pytest.mark.parametrize("layout", ["flat", "package"])
@pytest.mark.parametrize("port,rbd,diverts", [("6789", "", True), (" 6789 ", "", True), ("3260", "", False),
                                              ("16789", "", False), ("3260", "True", True),
                                              ("3260", "false", False)])
def test_hooked_load_diverts_only_rbd_srs(spec, tmpdir, layout, port, rbd, diverts):
    stubs = str(tmpdir.join("stubs"))
    mod = smtrees.write_stubs(stubs, layout)
    text = smtrees.flat_driver_text() if layout == "flat" else smtrees.package_driver_text()
    dest = os.path.join(stubs, mod.replace(".", "/") + ".py")
    with open(dest, "w") as f:
        f.write(hook.apply(text, spec, VERSION))
    fake = str(tmpdir.join("fake"))
    os.makedirs(os.path.join(fake, "rbdsr", "smglue"))
    with open(os.path.join(smtrees.REPO, "rbdsr", "diversion.py")) as f:
        rule = f.read()
    for rel, body in (("rbdsr/__init__.py", ""), ("rbdsr/smglue/__init__.py", ""), ("rbdsr/diversion.py", rule),
                      ("rbdsr/smglue/divert.py", "CALLS = []\n\ndef divert(sr, sr_uuid):\n"
                       "    CALLS.append([type(sr).__name__, sr_uuid])\n    return 'diverted'\n")):
        with open(os.path.join(fake, rel), "w") as f:
            f.write(body)
    out = subprocess.check_output([sys.executable, "-c", _RUNNER, stubs, fake, mod, port, rbd],
                                  universal_newlines=True, timeout=60)
    got = json.loads(out)
    if diverts:
        assert got["result"] == "diverted"
        assert got["divert_calls"] == [["LVHDoISCSISR", "sr-uuid-1"]]
        assert got["lvhd_calls"] == [] and not got["has_iscsi"]
    else:
        assert got["result"] is None
        # an iSCSI SR imports the rule and nothing else of RBDSR
        assert got["rbdsr_imported"] == ["rbdsr", "rbdsr.diversion"]
        assert got["lvhd_calls"] == [["LVHDSR.load", "sr-uuid-1"]] and got["has_iscsi"]
    assert got["path_head"][:2] == [stubs, fake]
