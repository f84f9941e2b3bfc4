"""Parent references inside VHD and QCOW2 volumes, renamed with their SR.

An LVHD snapshot child names its parent by path, /dev/VG_XenStorage-<sr>/VHD-<vdi>
or its device-mapper spelling /dev/mapper/VG_XenStorage--<sr>-VHD--<vdi> (what vhd-util
stores when given an LVM path; sm's extractUuid reads both):
in a VHD, in the dynamic header's parent name (UTF-16BE) and its parent
locators (UTF-16LE for W2ku/W2ru, UTF-8 for MacX), with a header checksum; in
a QCOW2, in the backing file name. A cloned SR gets new SR and VDI uuids, so
these strings get the same byte-for-byte (same-length) replacement; a VHD's
own uuids (footer, parent_unique_id) stay, they are internal to the chain.

read(offset, n) / write(offset, data) access one volume."""
import struct

from rbdsr.errors import RBDError

FOOTER_COOKIE = b"conectix"
HEADER_COOKIE = b"cxsparse"
DIFFERENCING = 4
HEADER_SIZE = 1024
NAME_OFF, NAME_LEN = 64, 512
LOC_OFF, LOC_COUNT, LOC_SIZE = 576, 8, 24
MAX_LOCATOR = 64 << 10
QCOW_MAGIC = b"QFI\xfb"


class VolumeError(RBDError):
    key = "SMGeneral"


def _swap(data, pairs, encodings):
    for old, new in pairs:
        # vhd-util may store the parent as its device-mapper name, where every '-'
        # of the VG and LV names is doubled (/dev/mapper/VG_XenStorage--<sr>-VHD--<vdi>)
        for o, n in ((old, new), (old.replace("-", "--"), new.replace("-", "--"))):
            for enc in encodings:
                data = data.replace(o.encode(enc), n.encode(enc))
    return data


def vhd_checksum(header):
    total = sum(bytearray(header[:36])) + sum(bytearray(header[40:]))
    return (~total) & 0xFFFFFFFF


def rewrite_vhd(read, write, pairs):
    """Rename parent references of a differencing VHD; returns True when changed."""
    footer = read(0, 512)
    if footer[:8] != FOOTER_COOKIE:
        raise VolumeError("no VHD footer copy at the start of the volume")
    if struct.unpack(">I", footer[60:64])[0] != DIFFERENCING:
        return False
    hoff = struct.unpack(">Q", footer[16:24])[0]
    header = bytearray(read(hoff, HEADER_SIZE))
    if bytes(header[:8]) != HEADER_COOKIE:
        raise VolumeError("no VHD dynamic header at byte %d" % hoff)
    if struct.unpack(">I", bytes(header[36:40]))[0] != vhd_checksum(bytes(header)):
        raise VolumeError("the VHD header checksum does not match: not touching this volume")
    changed = False
    name = _swap(bytes(header[NAME_OFF:NAME_OFF + NAME_LEN]), pairs, ["utf-16-be"])
    if name != bytes(header[NAME_OFF:NAME_OFF + NAME_LEN]):
        header[NAME_OFF:NAME_OFF + NAME_LEN] = name
        changed = True
    for i in range(LOC_COUNT):
        entry = bytes(header[LOC_OFF + i * LOC_SIZE:LOC_OFF + (i + 1) * LOC_SIZE])
        code, _space, length, _res, offset = struct.unpack(">IIIIQ", entry)
        if code == 0 or length == 0:
            continue
        if length > MAX_LOCATOR:
            raise VolumeError("VHD parent locator %d is implausibly long (%d bytes)" % (i, length))
        data = read(offset, length)
        new = _swap(data, pairs, ["utf-8", "utf-16-le", "utf-16-be"])
        if new != data:
            write(offset, new)
            changed = True
    if changed:
        struct.pack_into(">I", header, 36, vhd_checksum(bytes(header)))
        write(hoff, bytes(header))
    return changed


def rewrite_qcow2(read, write, pairs):
    """Rename the backing file name of a QCOW2 volume; True when changed."""
    head = read(0, 32)
    if head[:4] != QCOW_MAGIC:
        raise VolumeError("no QCOW2 header at the start of the volume")
    offset = struct.unpack(">Q", head[8:16])[0]
    size = struct.unpack(">I", head[16:20])[0]
    if offset == 0 or size == 0:
        return False
    if size > 1023:
        raise VolumeError("QCOW2 backing file name is implausibly long (%d bytes)" % size)
    data = read(offset, size)
    new = _swap(data, pairs, ["utf-8"])
    if new == data:
        return False
    write(offset, new)
    return True
