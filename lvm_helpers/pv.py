"""What a block device holds (blank / an LVM PV / other data), and pvresize.

The on-disk LVM2 label is read directly (so the answer does not depend on
lvm.conf filters accepting the device):
- a label sector in sectors 0-3 starts with "LABELONE" and has type "LVM2 001";
- the PV header after it lists data areas, then metadata areas (offset, size);
- a metadata area starts with an mda header (magic " LVM2 x[5A%r0N*>") whose
  first raw location points at the current metadata text "<vg name> { ...".
All multi-byte fields are little-endian.
"""
import os
import re
import struct

from lvm_helpers import cmd
from lvm_helpers.cmd import LVMError

SECTOR = 512
MIB = 1 << 20
LABEL_ID = b"LABELONE"
LVM2_TYPE = b"LVM2 001"
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MDA_HEADER_SIZE = 512
PV_UUID_LEN = 32
MAX_METADATA = 64 * MIB  # sanity bound on a metadata text we would read

BLANK, PV, DATA, UNKNOWN = "blank", "pv", "data", "unknown"

_LOCN = struct.Struct("<QQ")  # disk_locn: offset, size
_RAW_LOCN = struct.Struct("<QQII")  # raw_locn: offset, size, checksum, flags
_MDA_HDR = struct.Struct("<I16sIQQ")  # checksum, magic, version, start, size
_VG_NAME_RE = re.compile(rb"\A\s*([A-Za-z0-9+_.\-]+)\s*\{")


def find_label(head):
    """(sector_index, pv_header_offset_in_sector) of an LVM2 label in the first
    4 sectors of `head`, or None."""
    for i in range(4):
        sec = head[i * SECTOR:(i + 1) * SECTOR]
        if len(sec) < 32 or sec[:8] != LABEL_ID:
            continue
        sector_xl, _crc, offset_xl = struct.unpack_from("<QII", sec, 8)
        if sector_xl != i or sec[24:32] != LVM2_TYPE or not 32 <= offset_xl < SECTOR:
            continue
        return i, offset_xl
    return None


def parse_pv_header(buf):
    """(pv_uuid, device_size, data_areas, metadata_areas) from a PV header."""
    if len(buf) < PV_UUID_LEN + 8:
        raise ValueError("short PV header")
    uuid = buf[:PV_UUID_LEN].decode("ascii", "replace")
    (dev_size,) = struct.unpack_from("<Q", buf, PV_UUID_LEN)
    pos = PV_UUID_LEN + 8
    lists = []
    for _ in range(2):
        areas = []
        while True:
            if pos + _LOCN.size > len(buf):
                raise ValueError("PV header area list runs past the sector")
            off, size = _LOCN.unpack_from(buf, pos)
            pos += _LOCN.size
            if off == 0 and size == 0:
                break
            areas.append((off, size))
        lists.append(areas)
    return uuid, dev_size, lists[0], lists[1]


def parse_mda_header(buf):
    """(start, size, [(offset, size)]) of an mda header, or None if it is not one."""
    if len(buf) < _MDA_HDR.size:
        return None
    _ck, magic, _version, start, size = _MDA_HDR.unpack_from(buf, 0)
    if magic != MDA_MAGIC:
        return None
    locns = []
    pos = _MDA_HDR.size
    while pos + _RAW_LOCN.size <= len(buf):
        off, lsize, _c, _flags = _RAW_LOCN.unpack_from(buf, pos)
        pos += _RAW_LOCN.size
        if off == 0 and lsize == 0:
            break
        locns.append((off, lsize))
    return start, size, locns


def vg_name_from_metadata(text):
    m = _VG_NAME_RE.match(text)
    return m.group(1).decode("ascii") if m else None


def _pread(fd, size, offset):
    chunks = []
    while size > 0:
        b = os.pread(fd, min(size, 4 * MIB), offset)
        if not b:
            break
        chunks.append(b)
        size -= len(b)
        offset += len(b)
    return b"".join(chunks)


def read_vg_name(fd, head):
    """VG name recorded on the PV whose first bytes are `head`, '' for an orphan
    PV, None when there is no LVM2 label or the metadata cannot be read."""
    found = find_label(head)
    if found is None:
        return None
    sector, offset = found
    hdr = head[sector * SECTOR + offset:(sector + 1) * SECTOR]
    try:
        _uuid, _size, _data, mdas = parse_pv_header(hdr)
    except ValueError:
        return None
    for mda_off, _mda_size in mdas:
        mh = parse_mda_header(_pread(fd, MDA_HEADER_SIZE, mda_off))
        if mh is None:
            continue
        start, size, locns = mh
        if not locns:
            return ""  # metadata area with no metadata: a PV in no VG
        off, lsize = locns[0]
        if lsize == 0:
            return ""
        if lsize > MAX_METADATA or off >= size:
            continue
        first = min(lsize, size - off)
        text = _pread(fd, first, start + off)
        if first < lsize:  # circular buffer: wraps to just after the header
            text += _pread(fd, lsize - first, start + MDA_HEADER_SIZE)
        name = vg_name_from_metadata(text)
        if name:
            return name
    return None


def _nonzero(data):
    return data.count(0) != len(data)


def device_size(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def device_state(dev, use_blkid=True, timeout=cmd.DEFAULT_TIMEOUT):
    """('blank'|'pv'|'data', vg_name or None) for block device (or file) `dev`.

    'pv' with vg None: an LVM2 PV in no VG (or whose metadata we could not read).
    'data': anything else non-zero in the first or last MiB, or a signature
    blkid knows. 'unknown': blkid could not give an answer (fail closed).
    'blank': all of that is zero and blkid says it found nothing. Only the
    ends are read: callers that must know the whole image is unused ask Ceph
    which extents were ever written (rbdsr.backends written_extents).
    """
    fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        # Drop cached pages: another host may have written the image.
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except (OSError, AttributeError):
            pass
        head = _pread(fd, min(MIB, size), 0)
        if find_label(head) is not None:
            name = read_vg_name(fd, head)
            if name is None:
                name = _vg_name_from_pvs(dev, timeout)
            return PV, (name or None)
        tail = _pread(fd, min(MIB, size), max(0, size - MIB))
        if _nonzero(head) or _nonzero(tail):
            return DATA, None
    finally:
        os.close(fd)
    if use_blkid:
        found = _blkid_finds_something(dev, timeout)
        if found is None:
            return UNKNOWN, None
        if found:
            return DATA, None
    return BLANK, None


def _vg_name_from_pvs(dev, timeout):
    try:
        res = cmd.run(["pvs", "--noheadings", "-o", "vg_name", dev], timeout, check=False)
    except LVMError:
        return None
    return res.out.strip() if res.rc == 0 else None


def _blkid_finds_something(dev, timeout):
    """True when blkid -p sees a signature, False only when it says it found
    nothing (exit 2), None when it gave no answer: timed out, missing, usage
    error (4) or ambivalent result (8)."""
    try:
        res = cmd.run(["blkid", "-p", "-o", "export", dev], timeout, check=False)
    except Exception:  # noqa: BLE001 - blkid missing or unusable: we cannot tell
        return None
    if res.rc == 0:
        return True
    if res.rc == 2:
        return False
    return None


def pv_fields(dev, fields, timeout=cmd.DEFAULT_TIMEOUT):
    """{field: value} from pvs in bytes for one PV."""
    res = cmd.run(["pvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", "|",
                   "-o", ",".join(fields), dev], timeout)
    values = res.out.strip().split("|")
    if len(values) != len(fields):
        raise LVMError("pvs gave unexpected output for %s" % dev)
    return dict(zip(fields, (v.strip() for v in values)))


def pv_size(dev, timeout=cmd.DEFAULT_TIMEOUT):
    return int(pv_fields(dev, ["pv_size"], timeout)["pv_size"])


def resize(dev, timeout=cmd.DEFAULT_TIMEOUT):
    """pvresize `dev` to the device's size; return the new PV size, checked.

    The PV must cover the device up to less than one extent (plus pe_start):
    anything short of that means the kernel or LVM did not see the growth.
    """
    old = pv_size(dev, timeout)
    cmd.run(["pvresize", dev], timeout)
    f = pv_fields(dev, ["pv_size", "pe_start", "vg_extent_size"], timeout)
    new = int(f["pv_size"])
    pe_start = int(f["pe_start"] or 0)
    extent = int(f["vg_extent_size"] or 0) or 4 * MIB
    dev_size = device_size(dev)
    if new < old or dev_size - (new + pe_start) >= extent + MIB:
        raise LVMError("pvresize %s left the PV at %d bytes on a %d byte device" % (dev, new, dev_size))
    return new
