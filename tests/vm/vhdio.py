"""A small reader (and in-place writer) of VHD images (the Microsoft VHD format sm's LVHD
keeps in each LV), for checking what a VDI holds through its whole chain of differencing
parents -- what tapdisk would show a VM -- without sm or vhd-util. qemu's `vpc` driver
reads only fixed and dynamic VHDs (no differencing chains), and its writes put new blocks
right after the BAT, over the batmap XenServer's VHDs keep there (vhd-util check then
fails: "failed to get batmap header"); hence this.

Writing only overwrites data in blocks that are already allocated with their sectors
marked present (e.g. after `vhd-util fill`): no VHD metadata changes.

The footer copy at offset 0 is used (an LV is larger than its VHD, so the file's last 512
bytes are not the footer). A parent is found through the parent locators (MacX: a
file:// URL, W2ku/W2ru: UTF-16 paths), relative to the child's directory or, as vhd-util
writes them for LVs, to /dev/mapper.
"""
import os
import struct

SECTOR = 512
UNALLOCATED = 0xFFFFFFFF
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4


class VHDError(Exception):
    pass


class VHD(object):
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            footer = f.read(SECTOR)
            if footer[:8] != b"conectix":
                raise VHDError("%s: no VHD footer copy at offset 0" % path)
            self.data_offset, = struct.unpack_from(">Q", footer, 16)
            self.size, = struct.unpack_from(">Q", footer, 48)
            self.disk_type, = struct.unpack_from(">I", footer, 60)
            self.uuid = footer[68:84]
            if self.disk_type == FIXED:
                raise VHDError("%s: fixed VHDs are not expected on LVHD" % path)
            f.seek(self.data_offset)
            hdr = f.read(1024)
            if hdr[:8] != b"cxsparse":
                raise VHDError("%s: no dynamic header at %d" % (path, self.data_offset))
            table, = struct.unpack_from(">Q", hdr, 16)
            entries, self.block_size = struct.unpack_from(">II", hdr, 28)
            self.parent_uuid = hdr[40:56]
            self.locators = [struct.unpack_from(">IIIIQ", hdr, 576 + 24 * i) for i in range(8)]
            f.seek(table)
            self.bat = struct.unpack(">%dI" % entries, f.read(4 * entries))
            self.parent_path = self._parent_path(f) if self.disk_type == DIFFERENCING else None
        self.spb = self.block_size // SECTOR
        self.bitmap_bytes = ((self.spb // 8) + SECTOR - 1) // SECTOR * SECTOR
        self._parent = None
        self._fh = None

    def _parent_path(self, f):
        seen = []
        for code, _space, length, _res, offset in self.locators:
            if not code or not length:
                continue
            f.seek(offset)
            raw = f.read(length)
            if code == 0x4D616358:  # 'MacX': file:// URL
                text = raw.decode("utf-8").rstrip("\0")
                if text.startswith("file://"):
                    text = text[len("file://"):]
            elif code in (0x57326B75, 0x57327275):  # 'W2ku', 'W2ru': UTF-16LE paths
                text = raw.decode("utf-16-le").rstrip("\0").replace("\\", "/")
            else:
                continue
            # vhd-util writes it relative to the child's canonical path, which for an LV
            # is /dev/mapper/<vg>-<lv>
            for base in (os.path.dirname(self.path), "/dev/mapper"):
                path = os.path.normpath(os.path.join(base, text))
                seen.append(path)
                if os.path.exists(path):
                    return path
        raise VHDError("%s: differencing VHD whose parent locators lead nowhere: %s" % (self.path, seen))

    @property
    def parent(self):
        if self.parent_path and self._parent is None:
            self._parent = VHD(self.parent_path)
            if self._parent.uuid != self.parent_uuid:
                raise VHDError("%s: parent %s has another uuid" % (self.path, self.parent_path))
        return self._parent

    def chain(self):
        v, out = self, []
        while v is not None:
            out.append(v.path)
            v = v.parent
        return out

    def read(self, offset, length):
        """length bytes at offset (both sector aligned) of the virtual disk."""
        if offset % SECTOR or length % SECTOR:
            raise ValueError("unaligned read")
        out = bytearray()
        for sector in range(offset // SECTOR, (offset + length) // SECTOR):
            out += self._sector(sector)
        return bytes(out)

    def _sector(self, sector):
        if self._fh is None:
            self._fh = open(self.path, "rb")
        f = self._fh
        if sector * SECTOR >= self.size:
            raise VHDError("read beyond the virtual size %d" % self.size)
        block, i = divmod(sector, self.spb)
        where = self.bat[block] if block < len(self.bat) else UNALLOCATED
        if where != UNALLOCATED:
            f.seek(where * SECTOR)
            bitmap = f.read(self.bitmap_bytes)
            if bitmap[i // 8] & (0x80 >> (i % 8)):
                f.seek(where * SECTOR + self.bitmap_bytes + i * SECTOR)
                return f.read(SECTOR)
        if self.parent is not None:
            return self.parent._sector(sector)
        return bytes(SECTOR)

    def write(self, offset, data):
        """Overwrite present sectors of this VHD (not its parents) in place."""
        if offset % SECTOR or len(data) % SECTOR:
            raise ValueError("unaligned write")
        with open(self.path, "r+b") as f:
            for k in range(len(data) // SECTOR):
                sector = offset // SECTOR + k
                block, i = divmod(sector, self.spb)
                where = self.bat[block]
                if where == UNALLOCATED:
                    raise VHDError("%s: block %d is not allocated" % (self.path, block))
                f.seek(where * SECTOR)
                if not f.read(self.bitmap_bytes)[i // 8] & (0x80 >> (i % 8)):
                    raise VHDError("%s: sector %d is not present" % (self.path, sector))
                f.seek(where * SECTOR + self.bitmap_bytes + i * SECTOR)
                f.write(data[k * SECTOR:(k + 1) * SECTOR])
            f.flush()
            os.fsync(f.fileno())

    def close(self):
        v = self
        while v is not None:
            if v._fh is not None:
                v._fh.close()
                v._fh = None
            v = v._parent
