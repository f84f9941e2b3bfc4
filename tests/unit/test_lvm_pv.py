"""What a device holds: the LVM2 label/metadata reader against real LVM output.

The two images below are the non-zero 512-byte sectors that LVM 2.03.16 wrote
on a 64 MiB loop device (`pvcreate`, then `vgcreate --metadatasize 10M
VG_XenStorage-0f1e2d3c-h3b-fixture`, as sm does), stored as zlib(base64) of
(le64 offset + 512 bytes) records. tests/vm checks the same reader live.
"""
import base64
import os
import struct
import zlib

import pytest

from lvm_helpers import pv

ORPHAN_PV = (
    "eNpjYGIAAx9HJ1cffz9XRgiX4fL5AiYFkHiYr5GCgYFhlqWZUb5RumORm2G+e0apha+BU2qlr1FOtr9RamRSYD5QKQtEpwAD"
    "XgCT/sCPVZqJYRQMCIDGi9i1vtsK4EiviDZ1VC0y8NOyYyQi3kbB8AAA2scZaQ=="
)
VG_PV = (
    "eNrtVO9u0zAQ7xgfwEICIR7glAppQ7hz3CZLKw2RblnV0T9jrTbGNKI0dduMJi75R8vEJ56FF9jD8Bw8AnayMpAG4hMfYBdF"
    "9p199t3vzr/CrUImLbNutbodayVXC1u16ipI+2GbAiHqWVWnnI7NcFfljUlitEmdLdp0+rZL2fHgJRdbb+eeDwq/leXy1/vX"
    "LstwVgo38tflsi4Xdy4wZEWfn2jm45B0njxbua5ul31zbzUfv7z5/OkGxH9AHubDYcN+xYJezENnzDAZqYwOyy6elAd45M3j"
    "JGRwjrwhbIFy3GiqzT3c1RYRrnrJHFeb7wdYexHs4lZ9bw/346Z/5isoYu8CLhxUNOKh78TSd5r6VKzETpxEQj9RDqxe87Vl"
    "1luW8hSEZu7I8eig2beUUzSaOuNs3yli85gFsR15H5gwGGqVIt+Z29NUaCSbzi6nLHaGTuzYLp95LMpsaDZZRJ7rTO2UTxNf"
    "WM+FLSXfc8rpDku+w5LwsGQ8LCkPS87DOekpaMhSz5UBKBtiujHlfEYU9GNCZqvV3Tb7WUY/JSD2L6NXyyrZpGjGbOEYSmAo"
    "qRhSd3kSSF3V0EfxIfEXocECFjoxG8Jgkb/VlIWRxwOgJVIuqfoaXYc1SijFRMOqsV6DXhJAh6dAJZnXSKVW1sQdVEfI5YEE"
    "Ugal9AWosJsVp/Ao7wM4zACCRsiTmYKWF8kqigwiN/RmcW5QjkIvZjAKuQ/p2A2ZiBAwXsKfpaqSNvxBZ11hWRJgZkeJO+wJ"
    "j7KmSX3lbhFaXpDMIfVBL6lGqVLBIxenul6Fogq99j7sH1hWe79v7xx3zHZzG54TmBu6rVeuDow9P4N/s6qViWZsauLYXyP1"
    "X9LBNy/XAKI="
)

SIZE = 64 << 20


def _image(tmp_path, packed=None, extra=()):
    path = str(tmp_path / "dev.img")
    with open(path, "wb") as f:
        f.truncate(SIZE)
        if packed:
            blob = zlib.decompress(base64.b64decode("".join(packed)))
            for i in range(0, len(blob), 520):
                (off,) = struct.unpack_from("<Q", blob, i)
                f.seek(off)
                f.write(blob[i + 8:i + 520])
        for off, data in extra:
            f.seek(off)
            f.write(data)
    return path


def test_blank(tmp_path):
    assert pv.device_state(_image(tmp_path), use_blkid=False) == ("blank", None)


def test_pv_in_a_vg_gives_the_vg_name(tmp_path):
    path = _image(tmp_path, VG_PV)
    assert pv.device_state(path, use_blkid=False) == ("pv", "VG_XenStorage-0f1e2d3c-h3b-fixture")


def test_orphan_pv(tmp_path):
    assert pv.device_state(_image(tmp_path, ORPHAN_PV), use_blkid=False) == ("pv", None)


def test_label_found_in_sector_one_with_pv_header():
    blob = zlib.decompress(base64.b64decode("".join(VG_PV)))
    head = bytearray(4096)
    for i in range(0, len(blob), 520):
        (off,) = struct.unpack_from("<Q", blob, i)
        if off < 4096:
            head[off:off + 512] = blob[i + 8:i + 520]
    sector, offset = pv.find_label(bytes(head))
    assert sector == 1
    uuid, dev_size, data, mdas = pv.parse_pv_header(bytes(head[512 + offset:1024]))
    assert len(uuid) == 32 and dev_size == SIZE
    assert mdas and mdas[0][0] == 4096
    assert data and data[0][0] > mdas[0][0]


@pytest.mark.parametrize("where", [0, 12345, SIZE - 1])
def test_any_data_in_first_or_last_mib(tmp_path, where):
    path = _image(tmp_path, extra=[(where, b"\x01")])
    assert pv.device_state(path, use_blkid=False) == ("data", None)


def test_data_in_the_middle_is_not_looked_at_but_blkid_would(tmp_path):
    # The quick check reads the first and last MiB only; blkid covers the
    # signatures placed elsewhere (when installed).
    path = _image(tmp_path, extra=[(SIZE // 2, b"\x01")])
    assert pv.device_state(path, use_blkid=False) == ("blank", None)


def test_a_fake_label_with_wrong_type_is_data(tmp_path):
    sec = b"LABELONE" + struct.pack("<QII", 1, 0, 32) + b"LVM9 001"
    path = _image(tmp_path, extra=[(512, sec)])
    assert pv.device_state(path, use_blkid=False) == ("data", None)


def test_vg_name_parser():
    assert pv.vg_name_from_metadata(b"VG_XenStorage-abc {\nid = \"x\"\n") == "VG_XenStorage-abc"
    assert pv.vg_name_from_metadata(b"\x00\x00garbage") is None
    assert pv.parse_mda_header(b"\x00" * 512) is None


def test_device_size(tmp_path):
    assert pv.device_size(_image(tmp_path)) == SIZE
    os.unlink(str(tmp_path / "dev.img"))
