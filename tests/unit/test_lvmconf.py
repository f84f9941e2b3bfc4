"""lvm.conf `types = [ "rbd", 1024 ]`: add, detect, and exact removal."""
import pytest

from lvm_helpers import lvmconf

STOCK = """# This is an example configuration file for the LVM2 system.
config {
\tchecks = 1
}

devices {
\t# Configuration option devices/dir.
\tdir = "/dev"
\tscan = [ "/dev" ]

\t# Configuration option devices/types.
\t# types = [ "fd", 16 ]
\tfilter = [ "r|/dev/xvd.|", "r|/dev/VG_Xen.*/*|" ]
\tsysfs_scan = 1
}

activation {
\tudev_sync = 1
}
"""

ACTIVE_TYPES = """devices {
    dir = "/dev"
    types = [ "fd", 16,
              "nvme", 64 ]
    filter = [ "a|#{[|" ]
}
"""

NO_DEVICES = "global {\n    umask = 077\n}"


@pytest.mark.parametrize("text", [STOCK, ACTIVE_TYPES, NO_DEVICES, "", "devices {\n}\n"])
def test_add_then_remove_restores_exact_bytes(text):
    added = lvmconf.add_rbd_types(text)
    assert added != text
    assert lvmconf.has_rbd_types(added)
    assert lvmconf.added_by_us(added)
    assert lvmconf.remove_rbd_types(added) == text


@pytest.mark.parametrize("text", [STOCK, ACTIVE_TYPES, NO_DEVICES])
def test_add_is_idempotent(text):
    once = lvmconf.add_rbd_types(text)
    assert lvmconf.add_rbd_types(once) == once


def test_stock_gets_entry_inside_devices_with_its_indent():
    added = lvmconf.add_rbd_types(STOCK)
    devices = added[added.index("devices {"):added.index("activation {")]
    assert '\ttypes = [ "rbd", 1024 ]\n' in devices
    assert not lvmconf.has_rbd_types(STOCK)


def test_existing_types_are_extended_and_the_original_kept_disabled():
    added = lvmconf.add_rbd_types(ACTIVE_TYPES)
    assert '    types = [ "fd", 16, "nvme", 64, "rbd", 1024 ]\n' in added
    assert "#RBDSR-DISABLED#     types = [ \"fd\", 16,\n" in added
    # The filter string with '#', '{' and '[' inside quotes did not confuse the parser.
    assert 'filter = [ "a|#{[|" ]' in added


def test_commented_entry_does_not_count():
    assert not lvmconf.has_rbd_types('devices {\n  # types = [ "rbd", 1024 ]\n}\n')
    assert not lvmconf.has_rbd_types('devices {\n  filter = [ "a|types = [ \\"rbd\\", 1|" ]\n}\n')
    assert not lvmconf.has_rbd_types('activation {\n  types = [ "rbd", 1024 ]\n}\n')
    assert lvmconf.has_rbd_types('devices {\n  types = [ "rbd", 1024 ]\n}\n')
    assert lvmconf.has_rbd_types('devices{types=["fd",16,"rbd",1024]}')


def test_already_configured_by_admin_is_left_alone():
    text = 'devices {\n\ttypes = [ "rbd", 250 ]\n}\n'
    assert lvmconf.add_rbd_types(text) == text
    assert not lvmconf.added_by_us(text)
    assert lvmconf.remove_rbd_types(text) == text


def test_one_line_section_is_refused_not_mangled():
    with pytest.raises(ValueError):
        lvmconf.add_rbd_types('devices { dir = "/dev" }\n')


def test_file_helpers(tmp_path):
    p = tmp_path / "lvm.conf"
    p.write_text(STOCK)
    assert not lvmconf.has_rbd_types(str(p))
    new = lvmconf.ensure_rbd_types(str(p))
    assert lvmconf.has_rbd_types(new)
    assert p.read_text() == STOCK  # ensure_ returns content, the caller writes
    p.write_text(new)
    assert lvmconf.has_rbd_types(str(p))
    assert lvmconf.ensure_rbd_types(str(p)) == new
