"""Pure parts of the admin command: snapshot names, Ceph's export streams
(written, then read back and refused when damaged), the MGT uuid renumbering
and VHD/QCOW2 parent references."""
import io
import struct

import pytest

from rbdsr.admin import mgt, names, rbdformat, vhdparent
from rbdsr.errors import ConfigError
from tests import lvhdshapes

SR = "11111111-2222-3333-4444-555555555555"
SR2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
V1 = "01234567-89ab-cdef-0123-456789abcdef"
V1N = "fedcba98-7654-3210-fedc-ba9876543210"


def test_names_round_trip_and_ownership():
    n = names.make(SR, "daily", now=0)
    assert n == "rbdsr-%s-19700101T000000Z-daily" % SR
    p = names.parse(n)
    assert (p.sr_uuid, p.when, p.label) == (SR, "19700101T000000Z", "daily")
    assert names.belongs(n, SR) and not names.belongs(n, SR2)
    assert names.parse("manual") is None and names.parse(n + "-x-y") is None
    for bad in ("a-b", "", "x" * 41, "-x"):
        with pytest.raises(ConfigError):
            names.make(SR, bad)
    with pytest.raises(ConfigError):
        names.make("not-a-uuid")


def _full(size=1 << 20, writes=((0, b"abc"),), snap="s1"):
    out = io.BytesIO()
    rbdformat.write_image_header(out, 22, 1, 1 << 22, 1)
    w = rbdformat.DiffWriter(out, 2)
    w.start(None, snap, size)
    for off, data in writes:
        w.data(off, data)
    w.end()
    return out.getvalue()


def _diff(frm="s1", to="s2", size=1 << 20):
    out = io.BytesIO()
    w = rbdformat.DiffWriter(out, 1)
    w.start(frm, to, size)
    w.data(4096, b"xyz")
    w.zero(8192, 512)
    w.end()
    return out.getvalue()


def _read(data):
    events = []
    kind, meta, diffs = rbdformat.read_stream(io.BytesIO(data), "f", lambda *a: events.append(a))
    return kind, meta, diffs, events


def test_full_export_reads_back():
    kind, meta, diffs, events = _read(_full())
    assert kind == "full" and meta.order == 22 and meta.features == 1
    assert [(d.from_snap, d.to_snap, d.size) for d in diffs] == [(None, "s1", 1 << 20)]
    assert ("write", 0, b"abc") in events


def test_diff_reads_back():
    kind, meta, diffs, events = _read(_diff())
    assert kind == "diff" and meta is None
    assert [(d.from_snap, d.to_snap) for d in diffs] == [("s1", "s2")]
    assert ("write", 4096, b"xyz") in events and ("zero", 8192, 512) in events


@pytest.mark.parametrize("data, fragment", [
    (b"", "is not an RBD export"),
    (b"hello world, no export here", "is not an RBD export"),
    (_full()[:-1], "truncated"),
    (_full()[:40], "truncated"),
    (_diff()[:-5], "truncated"),
    (_full() + b"x", "data after the end record"),
    (_full(size=4096, writes=((4095, b"ab"),)), "beyond the image size"),
    (_diff().replace(b"w", b"Q", 1), "unknown record tag"),
])
def test_damaged_streams_refused(data, fragment):
    with pytest.raises(rbdformat.FormatError) as e:
        _read(data)
    assert fragment in str(e.value)


def test_mgt_renumbered_in_place():
    data = lvhdshapes.mgt_volume(SR, [V1])
    assert mgt.used_length(data) == len(data)
    new = mgt.renumber(data, SR, SR2, {V1: V1N})
    assert len(new) == len(data) and SR.encode() not in new and V1.encode() not in new
    assert ("<uuid>%s</uuid>" % SR2).encode() in new and new.count(V1N.encode()) == 2
    with pytest.raises(mgt.MetadataError):
        mgt.renumber(data, SR2, SR, {})
    with pytest.raises(mgt.MetadataError):
        mgt.used_length(b"\0" * 512)


def _rw(buf):
    def read(off, n):
        return bytes(buf[off:off + n])

    def write(off, data):
        buf[off:off + len(data)] = data
    return read, write


def test_vhd_parent_references_renamed():
    old = "/dev/VG_XenStorage-%s/VHD-%s" % (SR, V1)
    new = "/dev/VG_XenStorage-%s/VHD-%s" % (SR2, V1N)
    buf = lvhdshapes.vhd_child_head(old)
    assert vhdparent.rewrite_vhd(*_rw(buf), pairs=[(SR, SR2), (V1, V1N)])
    assert bytes(buf[512 + 64:512 + 576]).startswith(new.encode("utf-16-be"))
    assert new.encode("utf-16-le") in bytes(buf) and ("file://" + new).encode() in bytes(buf)
    assert old.encode("utf-16-le") not in bytes(buf)
    h = bytes(buf[512:1536])
    assert struct.unpack(">I", h[36:40])[0] == vhdparent.vhd_checksum(h)


def test_vhd_parent_in_device_mapper_spelling_renamed():
    def dm(sr, vdi):
        return "/dev/mapper/VG_XenStorage--%s-VHD--%s" % (sr.replace("-", "--"), vdi.replace("-", "--"))
    buf = lvhdshapes.vhd_child_head(dm(SR, V1))
    assert vhdparent.rewrite_vhd(*_rw(buf), pairs=[(SR, SR2), (V1, V1N)])
    assert dm(SR2, V1N).encode("utf-16-le") in bytes(buf) and SR.replace("-", "--").encode() not in bytes(buf)
    assert dm(SR, V1).encode("utf-16-le") not in bytes(buf)


def test_vhd_with_bad_checksum_left_alone():
    buf = lvhdshapes.vhd_child_head("/dev/VG_XenStorage-%s/VHD-%s" % (SR, V1))
    buf[600] ^= 1
    before = bytes(buf)
    with pytest.raises(vhdparent.VolumeError):
        vhdparent.rewrite_vhd(*_rw(buf), pairs=[(SR, SR2)])
    assert bytes(buf) == before


def test_qcow2_backing_file_renamed():
    buf = bytearray(4096)
    name = ("/dev/VG_XenStorage-%s/QCOW2-%s" % (SR, V1)).encode()
    buf[0:4] = b"QFI\xfb"
    struct.pack_into(">QI", buf, 8, 1024, len(name))
    buf[1024:1024 + len(name)] = name
    assert vhdparent.rewrite_qcow2(*_rw(buf), pairs=[(SR, SR2), (V1, V1N)])
    assert ("/dev/VG_XenStorage-%s/QCOW2-%s" % (SR2, V1N)).encode() in bytes(buf)
