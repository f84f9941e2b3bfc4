"""Bytes shaped like what sm writes on an LVHD SR, for tests that cannot run sm:
the MGT metadata volume (srmetadata's layout) and the first blocks of VHD volumes
(footer copy, dynamic header, parent locators), built from the published formats."""
import struct

from rbdsr.admin import vhdparent

DYNAMIC, DIFFERENCING = 3, 4


def vhd_footer(disk_type):
    buf = bytearray(512)
    buf[0:8] = b"conectix"
    struct.pack_into(">Q", buf, 16, 512)  # the dynamic header follows the footer copy
    struct.pack_into(">I", buf, 60, disk_type)
    return bytes(buf)


def vhd_child_head(parent_path, size=8192):
    """A differencing VHD's first `size` bytes naming parent_path in its header
    (UTF-16BE) and in a W2ku (UTF-16LE) and a MacX (UTF-8 URL) locator."""
    buf = bytearray(size)
    buf[0:512] = vhd_footer(DIFFERENCING)
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    name = parent_path.encode("utf-16-be")
    h[64:64 + len(name)] = name
    w2ku, macx = parent_path.encode("utf-16-le"), ("file://" + parent_path).encode()
    struct.pack_into(">IIIIQ", h, 576, 0x57326B75, 1, len(w2ku), 0, 2048)
    struct.pack_into(">IIIIQ", h, 600, 0x4D616358, 1, len(macx), 0, 2560)
    struct.pack_into(">I", h, 36, vhdparent.vhd_checksum(bytes(h)))
    buf[512:1536] = h
    buf[2048:2048 + len(w2ku)] = w2ku
    buf[2560:2560 + len(macx)] = macx
    return buf


def mgt_volume(sr, vdis, label="golden"):
    """Header sector, SR sectors (uuid, name), then two sectors per VDI."""
    head = ("XSSM:%-10d:1:2" % (512 * (4 + 2 * len(vdis)))).encode().ljust(512)
    body = head + ('<?xml version="1.0" ?><uuid>%s</uuid><allocation>thick</allocation>' % sr).encode().ljust(512)
    body += ("<name_label>%s</name_label>" % label).encode().ljust(512)
    body += b"<name_description></name_description>".ljust(512)
    for v in vdis:
        body += b"<vdi><name_label>disk</name_label><name_description></name_description>".ljust(512)
        body += ("<uuid>%s</uuid><is_a_snapshot>0</is_a_snapshot><snapshot_of>%s</snapshot_of><type>user</type>"
                 "<vdi_type>vhd</vdi_type><read_only>0</read_only><managed>1</managed>"
                 "<metadata_of_pool></metadata_of_pool><deleted>0</deleted></vdi>" % (v, v)).encode().ljust(512)
    return body
