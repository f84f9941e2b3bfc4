"""lvm_helpers.lvmview: reading lvmconfig's answer and lvm2's scan/filter rules."""
import pytest

from lvm_helpers import lvmview

BY_ID = "/dev/disk/by-id/rbd-8d9ba3a2-4c51-4f43-9a4c-0b0b7e7a8f21-2-10c5b3a2f6e1"
NAMES = [BY_ID, "/dev/rbd0", "/dev/block/251:0"]
CMDLINE = ["/dev/disk/by-id/rbdsr/rbd/-/RBDSR-probe"]

# `lvmconfig --type full devices` of dom0's shipped CA-410086 lvm.conf (abridged)
SHIPPED_OUT = """devices {
\tdir="/dev"
\tscan="/dev/disk/by-id"
\tobtain_device_list_from_udev=0
\tfilter=["r|/dev/disk/by-id/dm-name-VG_XenStorage.*|","r|/dev/disk/by-id/dm-uuid-LVM-.*|","r|/dev/disk/by-id/dm-name-XSLocal.*|"]
\tglobal_filter=["a|.*|"]
\tpv_min_size=2048
\tdata_alignment_offset_detection=1
}
"""


def test_parse_section_reads_scalars_lists_and_escapes():
    d = lvmview.parse_section(SHIPPED_OUT + '\ttypes=["fd",16,"rbd",1024]\n\tx=1.5\n\ty=["a|\\"q\\\\|"]\n')
    assert d["scan"] == "/dev/disk/by-id"  # one-element array printed as a scalar
    assert d["obtain_device_list_from_udev"] == 0
    assert d["filter"][1] == "r|/dev/disk/by-id/dm-uuid-LVM-.*|"
    assert d["types"] == ["fd", 16, "rbd", 1024]
    assert d["x"] == 1.5
    assert d["y"] == ['a|"q\\|']
    assert lvmview.type_names(d) == ["fd", "rbd"]


def test_parse_refuses_what_it_cannot_read():
    with pytest.raises(ValueError):
        lvmview.parse_section("devices {\n\tscan\n}\n")
    with pytest.raises(ValueError):
        lvmview.parse_value("[ unquoted ]")


def test_shipped_config_without_the_fix_does_not_see_rbd():
    d = lvmview.parse_section(SHIPPED_OUT)
    no_rule = ["/dev/rbd0", "/dev/block/251:0"]
    assert set(dict(lvmview.rbd_problems(d, no_rule, CMDLINE))) == {"devices/types"}
    # the driver's link outside /dev/disk/by-id (RBDSR before 1.0): not scanned either
    problems = dict(lvmview.rbd_problems(d, no_rule, ["/dev/rbdsr/rbd/-/img"]))
    assert set(problems) == {"devices/types", "devices/scan"}
    assert "/dev/disk/by-id" in problems["devices/scan"]


def test_shipped_config_with_types_and_the_by_id_name_sees_rbd():
    d = lvmview.parse_section(SHIPPED_OUT + '\ttypes=["rbd",1024]\n')
    assert lvmview.rbd_problems(d, NAMES, CMDLINE) == []


def test_pre_ca_scan_of_dev_sees_every_name():
    d = {"scan": ["/dev"], "types": ["rbd", 1024], "filter": "r|/dev/nbd|"}
    assert lvmview.scanned_names(d, NAMES) == NAMES
    assert lvmview.rbd_problems(d, NAMES, CMDLINE) == []


def test_device_list_from_udev_ignores_scan_and_links_udev_did_not_make():
    d = {"scan": "/dev/mapper", "obtain_device_list_from_udev": 1, "types": ["rbd", 1024]}
    assert lvmview.scanned_names(d, NAMES, CMDLINE) == NAMES
    assert lvmview.scanned_names({"scan": "/dev/mapper"}, NAMES, CMDLINE) == []
    problems = dict(lvmview.rbd_problems(d, NAMES, CMDLINE))
    assert list(problems) == ["devices/obtain_device_list_from_udev"]
    assert "the driver's path /dev/disk/by-id/rbdsr/rbd/-/RBDSR-probe" in problems[
        "devices/obtain_device_list_from_udev"]


def test_the_drivers_path_must_be_scanned():
    """lvm2 2.03: `pvcreate <path outside devices/scan>` says "No device found"."""
    d = {"scan": "/dev/disk/by-id", "types": ["rbd", 1024]}
    problems = dict(lvmview.rbd_problems(d, NAMES, ["/dev/rbdsr/rbd/-/img"]))
    assert list(problems) == ["devices/scan"]
    assert "does not hold the driver's path /dev/rbdsr/rbd/-/img" in problems["devices/scan"]
    assert lvmview.rbd_problems(d, NAMES, CMDLINE) == []


@pytest.mark.parametrize("patterns, names, accepted", [
    ([], NAMES, True),                                                  # no filter
    (["r|/dev/nbd|"], NAMES, True),                                     # nothing matches: accepted
    (["a|/dev/sda|", "r|.*|"], NAMES, False),                           # every name rejected
    (["a|/dev/disk/by-id/rbd-|", "r|.*|"], NAMES, True),                # one name accepted is enough
    (["r|/dev/rbd0|", "a|.*|"], NAMES, True),                           # another name accepted
    (["r|/dev/rbd0|"], ["/dev/rbd0"], False),
    (["r|/dev/rbd0|"], ["/dev/rbd0", "/dev/block/251:0"], False),       # rejected + unmatched: rejected
    (["a|rbd|", "r|rbd|"], ["/dev/rbd0"], True),                        # first matching pattern wins
    (["r(^/dev/rbd)", "a|.*|"], ["/dev/rbd0"], False),                  # bracket separators
    (["r|^/dev/rbd[0-9]+$|"], ["/dev/rbd12"], False),
    (["r|x{2}|"], ["/dev/xx"], True),                                   # braces are literal in lvm2
    (["r|x{2}|"], ["/dev/x{2}"], False),
])
def test_filter_verdict_follows_lvm2(patterns, names, accepted):
    assert lvmview.filter_verdict(patterns, names)[0] is accepted


@pytest.mark.parametrize("bad", ["x|a|", "a|abc", "a", "a|(|"])
def test_bad_patterns_are_reported(bad):
    with pytest.raises(ValueError):
        lvmview.filter_verdict([bad], ["/dev/rbd0"])
    problems = dict(lvmview.rbd_problems({"types": ["rbd", 1024], "filter": [bad]}, NAMES))
    assert "devices/filter" in problems


def test_filter_rejecting_the_drivers_path_is_a_problem():
    d = {"types": ["rbd", 1024], "scan": "/dev/disk/by-id", "global_filter": ["r|/rbdsr/|"]}
    problems = dict(lvmview.rbd_problems(d, NAMES, CMDLINE))
    assert list(problems) == ["devices/global_filter"]
    assert "r|/rbdsr/| rejects /dev/disk/by-id/rbdsr/rbd/-/RBDSR-probe" in problems["devices/global_filter"]


def test_under():
    assert lvmview.under("/dev/disk/by-id/x", "/dev/disk/by-id/")
    assert lvmview.under("/dev/disk/by-id/x", "/dev")
    assert not lvmview.under("/dev/disk/by-idx/x", "/dev/disk/by-id")
    assert lvmview.under("/dev/x", "/")
