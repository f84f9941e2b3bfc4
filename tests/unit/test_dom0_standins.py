"""The dom0 stand-ins the real-sm tiers run sm against: the systemctl stand-in
(tests/dom0bin/systemctl) and the XAPI stand-in (tests/fakesm/xapi): they must behave as
systemd and XAPI do for the calls sm makes."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEMCTL = os.path.join(ROOT, "tests", "dom0bin", "systemctl")
XAPI_DIR = os.path.join(ROOT, "tests", "fakesm", "xapi")
sys.path.insert(0, XAPI_DIR)

import XenAPI  # noqa: E402


@pytest.fixture
def sysroot(tmp_path, monkeypatch):
    units = tmp_path / "usr" / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    (tmp_path / "etc" / "systemd").mkdir(parents=True)
    (tmp_path / "etc" / "systemd" / "system.conf").write_text(
        '[Manager]\nDefaultEnvironment="GREETING=hello world" OTHER=1\n')
    # services run in / (systemd's default WorkingDirectory): absolute paths
    (units / "SMGC@.service").write_text(textwrap.dedent("""\
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c 'echo "$GREETING %I %i" > {d}/%I.out; sleep 1; exec test ! -e {d}/%I.fail'
        RemainAfterExit=no
        """).format(d=tmp_path))
    monkeypatch.setenv("SYSTEMCTL_STANDIN_ROOT", str(tmp_path))
    monkeypatch.setenv("SYSTEMCTL_STANDIN_STATE", str(tmp_path / "state"))
    return tmp_path


def systemctl(*args):
    return subprocess.run([sys.executable, SYSTEMCTL] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


def show(unit):
    out = systemctl("show", unit, "-p", "ActiveState", "-p", "Result", "-p", "ExecMainStatus").stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_start_no_block_runs_the_unit_to_its_end(sysroot, tmp_path):
    # sm: systemctl --quiet --no-block start SMGC@<uuid with - escaped as \x2d>
    unit = r"SMGC@ab\x2dcd"
    r = systemctl("--quiet", "--no-block", "start", unit)
    assert r.returncode == 0 and r.stdout == ""
    assert systemctl("is-active", unit).stdout.strip() == "activating"
    deadline = time.monotonic() + 30
    while systemctl("is-active", unit).stdout.strip() == "activating":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    r = systemctl("is-active", unit)
    assert (r.stdout.strip(), r.returncode) == ("inactive", 3)  # oneshot, RemainAfterExit=no
    assert show(unit) == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}
    # %I is the unescaped instance, %i the escaped one; the environment is DefaultEnvironment=
    assert (tmp_path / "ab-cd.out").read_text() == "hello world ab-cd ab\\x2dcd\n"


def test_blocking_start_waits_and_reports_failure(sysroot, tmp_path):
    (tmp_path / "x.fail").write_text("")
    r = systemctl("start", "SMGC@x")
    assert r.returncode == 1 and "failed" in r.stderr
    assert show("SMGC@x") == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "1"}


def test_unknown_units(sysroot):
    r = systemctl("start", "iscsid.service")
    assert r.returncode == 5 and "Unit iscsid.service not found." in r.stderr
    r = systemctl("is-active", "iscsid.service")
    assert (r.stdout.strip(), r.returncode) == ("inactive", 3)
    assert systemctl("frobnicate", "x").returncode == 1


def _xapi(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKEXAPI_DB", str(tmp_path / "xapi.json"))
    refs = XenAPI.seed(str(tmp_path / "xapi.json"), sr_uuid="sr-1", extra_hosts=1)
    x = XenAPI.xapi_local().xenapi
    x.login_with_password("root", "", "", "SM")
    return x, refs


def test_xapi_records_have_xapis_fields_and_errors(tmp_path, monkeypatch):
    x, refs = _xapi(tmp_path, monkeypatch)
    vdi = x.VDI.db_introduce("v-1", "disk", "", refs["sr"], "user", False, False, {}, "v-1", {}, {},
                             True, "1024", "0", "OpaqueRef:NULL", False,
                             XenAPI.xmlrpc.client.DateTime("19700101T00:00:00Z"), "OpaqueRef:NULL", False)
    assert x.VDI.get_is_a_snapshot(vdi) is False and x.VDI.get_snapshot_of(vdi) == "OpaqueRef:NULL"
    assert x.SR.get_VDIs(refs["sr"]) == [vdi]
    assert x.VDI.get_record(vdi)["snapshot_time"] == "19700101T00:00:00Z"
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.get_no_such_field(vdi)
    assert e.value.details == ["MESSAGE_METHOD_UNKNOWN", "VDI.get_no_such_field"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.get_uuid("OpaqueRef:gone")
    assert e.value.details == ["HANDLE_INVALID", "VDI", "OpaqueRef:gone"]
    x.VDI.add_to_sm_config(vdi, "paused", "true")
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.add_to_sm_config(vdi, "paused", "true")
    assert e.value.details[0] == "MAP_DUPLICATE_KEY"
    metrics = x.host.get_metrics(refs["hosts"][1])
    assert x.host_metrics.get_record(metrics)["live"] is True


def test_xapi_query_language(tmp_path, monkeypatch):
    x, refs = _xapi(tmp_path, monkeypatch)
    x.PBD.set_currently_attached(refs["pbds"][0], True)
    where = x.PBD.get_all_records_where
    assert list(where('field "SR" = "%s" and field "currently_attached" = "true"' % refs["sr"])) == [refs["pbds"][0]]
    assert list(where('not (field "currently_attached" = "true")')) == [refs["pbds"][1]]
    assert len(where('field "host" = "%s" or field "host" = "%s"' % tuple(refs["hosts"]))) == 2


def test_xapi_plugins_and_async_tasks(tmp_path, monkeypatch):
    x, refs = _xapi(tmp_path, monkeypatch)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    p = plugins / "echo"
    p.write_text("#!%s\nimport sys\nsys.path.insert(0, %r)\nimport XenAPIPlugin\n"
                 "def echo(session, args):\n    return args['word']\n"
                 "def boom(session, args):\n    raise ValueError('no')\n"
                 "XenAPIPlugin.dispatch({'echo': echo, 'boom': boom})\n" % (sys.executable, XAPI_DIR))
    p.chmod(0o755)
    monkeypatch.setattr(XenAPI, "PLUGIN_DIR", str(plugins))
    assert x.host.call_plugin(refs["hosts"][1], "echo", "echo", {"word": "hi"}) == "hi"
    with pytest.raises(XenAPI.Failure) as e:
        x.host.call_plugin(refs["hosts"][1], "echo", "boom", {})
    assert e.value.details == ["XENAPI_PLUGIN_FAILURE", "boom", "ValueError", "no"]
    with pytest.raises(XenAPI.Failure) as e:
        x.host.call_plugin(refs["hosts"][1], "nope", "x", {})
    assert e.value.details == ["XENAPI_MISSING_PLUGIN", "nope"]
    task = x.Async.SR.set_name_label(refs["sr"], "renamed")
    assert x.task.get_status(task) == "success" and x.SR.get_name_label(refs["sr"]) == "renamed"
