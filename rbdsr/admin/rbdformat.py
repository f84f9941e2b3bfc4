"""Ceph's own backup streams, written and read here without Ceph's code.

Full export: the `rbd export --export-format 2` stream ("rbd image v2"):
image records (tag u8, le64 length, data) O order, T features, U stripe unit,
C stripe count, then 'E', "rbd image diffs v2\n", le64 number of diffs and
that many "rbd diff v2" diffs (tag u8, le64 length, data; 'e' ends a diff).
`rbd import --export-format 2` reads it and creates the diffs' end snapshots.

Incremental export: the `rbd export-diff` stream ("rbd diff v1\n"): f from
snap, t to snap (le32 length + name), s size (le64), then w (le64 offset,
le64 length, data) and z (le64 offset, le64 length) records, 'e' at the end.
`rbd import-diff` reads it; it checks the from-snap exists in the target and
creates the to-snap.

The reader checks every record (known tags, lengths, extents inside the
image, the end record, nothing after it) so a file that is not an export, a
truncated one or a damaged one is refused before anything is written.
"""
import struct

from rbdsr.errors import RBDError

IMAGE_V2 = b"rbd image v2\n"
IMAGE_DIFFS_V2 = b"rbd image diffs v2\n"
DIFF_V1 = b"rbd diff v1\n"
DIFF_V2 = b"rbd diff v2\n"
MAX_NAME = 4096
MAX_DIFFS = 1 << 16
CHUNK = 4 << 20  # largest data record written, and the reader's read size
_Q = struct.Struct("<Q")
_L = struct.Struct("<L")
_QQ = struct.Struct("<QQ")


class FormatError(RBDError):
    """A file is not (or no longer) a valid export stream."""

    key = "InvalidArg"


# -- writing ---------------------------------------------------------------

class DiffWriter(object):
    """Records of one diff, v1 (export-diff) or v2 (inside an image v2 export)."""

    def __init__(self, out, version):
        self.out = out
        self.v2 = version == 2

    def _rec(self, tag, payload):
        if self.v2:
            self.out.write(tag + _Q.pack(len(payload)) + payload)
        else:
            self.out.write(tag + payload)

    def start(self, from_snap, to_snap, size):
        self.out.write(DIFF_V2 if self.v2 else DIFF_V1)
        for tag, name in ((b"f", from_snap), (b"t", to_snap)):
            if name is not None:
                raw = name.encode("utf-8")
                self._rec(tag, _L.pack(len(raw)) + raw)
        self._rec(b"s", _Q.pack(size))

    def data(self, offset, buf):
        head = b"w" + (_Q.pack(16 + len(buf)) if self.v2 else b"") + _QQ.pack(offset, len(buf))
        self.out.write(head)
        self.out.write(buf)

    def zero(self, offset, length):
        self._rec(b"z", _QQ.pack(offset, length))

    def end(self):
        self.out.write(b"e")


def write_image_header(out, order, features, stripe_unit, stripe_count, ndiffs=1):
    out.write(IMAGE_V2)
    for tag, value in ((b"O", order), (b"T", features), (b"U", stripe_unit), (b"C", stripe_count)):
        out.write(tag + _Q.pack(8) + _Q.pack(value))
    out.write(b"E" + IMAGE_DIFFS_V2 + _Q.pack(ndiffs))


# -- reading ---------------------------------------------------------------

class _Reader(object):
    def __init__(self, f, name):
        self.f = f
        self.name = name
        self.pos = 0

    def read(self, n, what):
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError("%s is truncated: %s at byte %d is cut short" % (self.name, what, self.pos))
        self.pos += n
        return data

    def q(self, what):
        return _Q.unpack(self.read(8, what))[0]

    def at_eof(self):
        return self.f.read(1) == b""


class Diff(object):
    """What one diff says: from_snap, to_snap (None when absent), size."""

    def __init__(self):
        self.from_snap = None
        self.to_snap = None
        self.size = None


class ImageMeta(object):
    def __init__(self):
        self.order = 22
        self.features = 1
        self.stripe_unit = None
        self.stripe_count = None


def _bad(r, message):
    return FormatError("%s: %s (at byte %d)" % (r.name, message, r.pos))


def _read_name(r, payload_len, tag):
    if payload_len is not None and (payload_len < 4 or payload_len > MAX_NAME + 4):
        raise _bad(r, "snapshot name record '%s' has length %d" % (tag, payload_len))
    n = _L.unpack(r.read(4, "a snapshot name length"))[0]
    if n == 0 or n > MAX_NAME or (payload_len is not None and payload_len != 4 + n):
        raise _bad(r, "snapshot name length %d is not valid" % n)
    raw = r.read(n, "a snapshot name")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(r, "snapshot name is not text")


def _diff_records(r, version, sink):
    """Read one diff after its banner; call sink(event, ...) for the data.
    Returns the Diff."""
    d = Diff()
    v2 = version == 2
    data_seen = False
    while True:
        tag = r.read(1, "a record tag")
        if tag == b"e":
            break
        length = r.q("a record length") if v2 else None
        if tag in (b"f", b"t"):
            if data_seen:
                raise _bad(r, "snapshot record after data records")
            name = _read_name(r, length, tag.decode())
            if tag == b"f":
                d.from_snap = name
            else:
                d.to_snap = name
        elif tag == b"s":
            if v2 and length != 8:
                raise _bad(r, "size record has length %d" % length)
            d.size = r.q("the image size")
            sink("size", d.size)
        elif tag == b"p" and v2:
            # rbd export writes the snapshot protection flag as one byte (its length field says 8)
            r.read(1, "a protection record")
        elif tag in (b"w", b"z"):
            data_seen = True
            if d.size is None:
                raise _bad(r, "data record before the size record")
            offset, count = _QQ.unpack(r.read(16, "a data record"))
            if v2 and length != 16 + (count if tag == b"w" else 0):
                raise _bad(r, "data record length %d does not match its extent" % length)
            if offset + count > d.size:
                raise _bad(r, "extent %d+%d lies beyond the image size %d" % (offset, count, d.size))
            if tag == b"z":
                sink("zero", offset, count)
                continue
            done = 0
            while done < count:
                n = min(CHUNK, count - done)
                sink("write", offset + done, r.read(n, "data"))
                done += n
        else:
            raise _bad(r, "unknown record tag %r" % (tag,))
    if d.size is None:
        raise _bad(r, "diff has no size record")
    return d


def _none(*_args):
    return None


def read_stream(f, name, sink=None):
    """Walk a whole export stream; sink(event, *args) gets
    ('diff', Diff-in-progress-index), ('size', n), ('write', off, bytes),
    ('zero', off, n), ('snap', Diff) after each diff ends.
    Returns (kind, ImageMeta or None, [Diff]) with kind 'full' or 'diff'."""
    sink = sink or _none
    r = _Reader(f, name)
    head = f.read(len(IMAGE_V2))
    r.pos = len(head)
    diffs = []
    if head == IMAGE_V2:
        meta = ImageMeta()
        while True:
            tag = r.read(1, "an image record tag")
            if tag == b"E":
                break
            length = r.q("an image record length")
            if tag in (b"O", b"T", b"U", b"C"):
                if length != 8:
                    raise _bad(r, "image record %r has length %d" % (tag, length))
                value = r.q("an image record")
                if tag == b"O":
                    if not 12 <= value <= 26:
                        raise _bad(r, "object order %d is not valid" % value)
                    meta.order = value
                elif tag == b"T":
                    meta.features = value
                elif tag == b"U":
                    meta.stripe_unit = value
                else:
                    meta.stripe_count = value
            elif length > (1 << 20):
                raise _bad(r, "image record %r is implausibly long (%d bytes)" % (tag, length))
            else:
                r.read(length, "an image record")  # e.g. 'M' image metadata: not needed
        if r.read(len(IMAGE_DIFFS_V2), "the diffs banner") != IMAGE_DIFFS_V2:
            raise _bad(r, "no diffs banner after the image records")
        count = r.q("the number of diffs")
        if count == 0 or count > MAX_DIFFS:
            raise _bad(r, "number of diffs %d is not valid" % count)
        for _ in range(count):
            if r.read(len(DIFF_V2), "a diff banner") != DIFF_V2:
                raise _bad(r, "a diff does not start with %r" % DIFF_V2)
            d = _diff_records(r, 2, sink)
            sink("snap", d)
            diffs.append(d)
        kind = "full"
    elif head[:len(DIFF_V1)] in (DIFF_V1, DIFF_V2):
        meta = None
        # the banner is one byte shorter than IMAGE_V2: hand that byte back
        extra = head[len(DIFF_V1):]
        version = 1 if head.startswith(DIFF_V1) else 2
        r = _Reader(_Prefixed(extra, f), name)
        r.pos = len(DIFF_V1)
        d = _diff_records(r, version, sink)
        sink("snap", d)
        diffs.append(d)
        kind = "diff"
    else:
        raise FormatError("%s is not an RBD export (no 'rbd image v2' or 'rbd diff' header)" % name)
    if not r.at_eof():
        raise _bad(r, "data after the end record")
    return kind, meta, diffs


class _Prefixed(object):
    """A file object whose first bytes were already read."""

    def __init__(self, prefix, f):
        self.prefix = prefix
        self.f = f

    def read(self, n):
        if self.prefix:
            head, self.prefix = self.prefix[:n], self.prefix[n:]
            if len(head) < n:
                head += self.f.read(n - len(head))
            return head
        return self.f.read(n)
