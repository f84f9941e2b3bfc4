"""Device I/O in a child the caller can abandon (lvm_helpers.devio), and the
blank check failing closed when blkid gives no answer."""
import os
import stat

import pytest

from lvm_helpers import devio, pv
from rbdsr.errors import TimeoutError_

MIB = 1 << 20


def _blank(tmp_path, size=8 * MIB):
    p = str(tmp_path / "img")
    with open(p, "wb") as f:
        f.truncate(size)
    return p


def test_state_in_a_child(tmp_path):
    assert devio.device_state(_blank(tmp_path), 30) == ("blank", None)


def test_a_device_that_never_answers_does_not_hold_the_caller(tmp_path):
    # A FIFO with no writer: opening it for reading sleeps until someone writes,
    # as a read of a krbd device whose OSDs are gone sleeps until they answer.
    fifo = str(tmp_path / "dead")
    os.mkfifo(fifo)
    with pytest.raises(TimeoutError_) as e:
        devio.device_state(fifo, 2)
    assert "within 2 s" in str(e.value) and e.value.key == "SRUnavailable"


def test_discard_fails_cleanly_where_the_device_cannot_discard(tmp_path):
    with pytest.raises(devio.DeviceIOError) as e:
        devio.discard(_blank(tmp_path), 30)
    assert "discarding" in str(e.value)


def test_inflight_of_a_non_device_is_unknown(tmp_path):
    assert devio.inflight(_blank(tmp_path)) is None


def _fake_blkid(tmp_path, monkeypatch, script):
    d = tmp_path / "bin"
    d.mkdir()
    b = d / "blkid"
    b.write_text("#!/bin/sh\n" + script + "\n")
    b.chmod(b.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", "%s:%s" % (d, os.environ["PATH"]))


@pytest.mark.parametrize("script", ["exit 4", "exit 8", "sleep 30", "exit 1"])
def test_blkid_without_an_answer_is_not_blank(tmp_path, monkeypatch, script):
    _fake_blkid(tmp_path, monkeypatch, script)
    assert pv.device_state(_blank(tmp_path), timeout=2) == (pv.UNKNOWN, None)


def test_blkid_missing_is_not_blank(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert pv.device_state(_blank(tmp_path), timeout=2) == (pv.UNKNOWN, None)


def test_blkid_saying_nothing_found_is_blank(tmp_path, monkeypatch):
    _fake_blkid(tmp_path, monkeypatch, "exit 2")
    assert pv.device_state(_blank(tmp_path), timeout=2) == (pv.BLANK, None)
