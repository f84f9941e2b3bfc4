"""rbdsr.hotplug.xenstore against the file-backed xenstore stand-in
(tests/fakexenstore: the real xenstored needs a Xen hypervisor, see its docstring)."""
import os
import time

import pytest

from rbdsr.hotplug.xenstore import Xenstore, XenstoreError
from tests import fakexenstore

BE = "/local/domain/0/backend/vbd/7/51712"


@pytest.fixture
def xs(tmp_path, monkeypatch):
    env = fakexenstore.install(str(tmp_path / "bin"), str(tmp_path / "xs.json"))
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("FAKE_XENSTORE_DB", env["FAKE_XENSTORE_DB"])
    store = Xenstore(timeout=20)
    store.db = env["FAKE_XENSTORE_DB"]
    return store


def test_write_read_list_exists_rm(xs):
    xs.write((BE + "/params", "rbd:xen:vm,id=xen"), (BE + "/mode", "w"))
    assert xs.read(BE + "/params") == "rbd:xen:vm,id=xen"
    assert xs.read(BE + "/mode") == "w"
    assert xs.exists(BE) and xs.exists("/local/domain/0/backend")  # parents created
    assert xs.list("/local/domain/0/backend/vbd") == ["7"]
    assert sorted(xs.list(BE)) == ["mode", "params"]
    xs.rm(BE + "/mode")
    assert xs.read(BE + "/mode") is None
    assert xs.read(BE + "/mode", "dflt") == "dflt"
    xs.rm(BE + "/mode")  # removing a missing node is fine
    xs.rm("/local/domain/0/backend/vbd/7")
    assert xs.list("/local/domain/0/backend/vbd") == []
    assert fakexenstore.load(xs.db) == {"/local": "", "/local/domain": "", "/local/domain/0": "",
                                        "/local/domain/0/backend": "", "/local/domain/0/backend/vbd": ""}


def test_values_keep_commas_colons_and_spaces(xs):
    value = "rbd:xen/ns:vm@s,conf=/etc/ceph/ceph.conf, trailing "
    xs.write((BE + "/params", value))
    assert xs.read(BE + "/params") == value


def test_missing_things(xs):
    assert xs.read("/nope") is None
    assert not xs.exists("/nope")
    assert xs.list("/nope") == []


def test_missing_tool_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(XenstoreError) as ei:
        Xenstore(timeout=5).read("/x")
    assert "xenstore-read is not available (install xenstore-utils)" in str(ei.value)


def test_broken_store_is_an_error_not_none(tmp_path, monkeypatch):
    # The tools run but cannot reach the store (like xs_open failing): not "missing".
    env = fakexenstore.install(str(tmp_path / "bin"), str(tmp_path / "xs.json"))
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.delenv("FAKE_XENSTORE_DB", raising=False)
    with pytest.raises(XenstoreError) as ei:
        Xenstore(timeout=20).exists("/x")
    assert "xs_open" in str(ei.value)


def test_hanging_tool_times_out(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "xenstore-read"
    tool.write_text("#!/bin/sh\nexec /bin/sleep 60\n")
    os.chmod(str(tool), 0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    start = time.monotonic()
    with pytest.raises(XenstoreError) as ei:
        Xenstore(timeout=1).read("/x")
    assert time.monotonic() - start < 10
    assert "did not finish within" in str(ei.value)


def test_other_users_of_a_device(xs):
    from rbdsr.hotplug.vbd import other_users
    root = "/local/domain/0/backend/vbd"
    xs.write((root + "/7/51712/physical-device", "fc:0"), (root + "/8/51712/physical-device", "fc:0"),
             (root + "/8/51728/physical-device", "fc:10"), (root + "/9/51712/params", "x:y"))
    assert other_users(xs, root + "/7/51712", "fc:0") == [root + "/8/51712"]
    assert other_users(xs, root + "/8/51728", "fc:10") == []
