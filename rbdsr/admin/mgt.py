"""LVHD's metadata volume (the MGT LV): new uuids for a cloned SR.

The volume is 512-byte sectors: sector 0 a header "XSSM:<used length>:<major>:<minor>"
padded with spaces, sector 1 XML with the SR <uuid>, then two sectors per VDI
whose second holds the VDI's <uuid> (and <snapshot_of>, a VDI uuid). Every
uuid is 36 characters, so replacing old uuids by new ones byte for byte keeps
every record where it was and the header's length right."""
from rbdsr.errors import RBDError

SECTOR = 512
MAGIC = b"XSSM"


class MetadataError(RBDError):
    key = "SMGeneral"


def used_length(head):
    """The used length from the header sector; MetadataError if it is not one."""
    parts = head[:SECTOR].rstrip(b" \x00").split(b":")
    if len(parts) != 4 or parts[0] != MAGIC:
        raise MetadataError("the MGT volume has no XSSM header: not an LVHD SR's metadata")
    try:
        length = int(parts[1].strip())
    except ValueError:
        raise MetadataError("the MGT header's length %r is not a number" % parts[1][:16])
    if length < SECTOR:
        raise MetadataError("the MGT header's length %d is too small" % length)
    return length


def renumber(data, sr_old, sr_new, vdi_map):
    """data (the used part of the volume) with the SR uuid and every VDI uuid
    in vdi_map replaced. The SR uuid must occur (it is the SR's own metadata)."""
    pairs = [(sr_old, sr_new)] + sorted(vdi_map.items())
    for old, new in pairs:
        if len(old) != len(new):
            raise MetadataError("uuid %s and %s differ in length" % (old, new))
    if ("<uuid>%s</uuid>" % sr_old).encode() not in data:
        raise MetadataError("the MGT volume does not describe SR %s" % sr_old)
    for old, new in pairs:
        data = data.replace(old.encode(), new.encode())
    return data
