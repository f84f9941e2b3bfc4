"""The wizard's probe XML, element by element, in sm's shapes."""
import xml.dom.minidom

import pytest

from rbdsr.smglue import probexml

FSID = "9f2a4c1e-1111-4222-8333-944455556666"


def elements(node):
    return [c for c in node.childNodes if c.nodeType == c.ELEMENT_NODE]


def text(node):
    return "".join(t.data for t in node.childNodes if t.nodeType == t.TEXT_NODE).strip()


def test_targets_one_tgt_per_pool_in_order():
    doc = xml.dom.minidom.parseString(probexml.targets_xml(["rbd", "vms", "fast_ssd"], "10.0.0.5", 6789))
    root = doc.documentElement
    assert root.tagName == "iscsi-target-iqns"
    tgts = elements(root)
    assert [t.tagName for t in tgts] == ["TGT", "TGT", "TGT"]
    for i, (tgt, pool) in enumerate(zip(tgts, ["rbd", "vms", "fast_ssd"])):
        kids = elements(tgt)
        assert [k.tagName for k in kids] == ["Index", "IPAddress", "Port", "TargetIQN"]
        assert [text(k) for k in kids] == [str(i), "10.0.0.5", "6789", pool]


def test_targets_port_left_out_for_iscsi_default_like_sm():
    doc = xml.dom.minidom.parseString(probexml.targets_xml(["rbd"], "mon1", 3260))
    kids = elements(elements(doc.documentElement)[0])
    assert [k.tagName for k in kids] == ["Index", "IPAddress", "TargetIQN"]


def test_targets_empty_pool_list_is_an_empty_document():
    doc = xml.dom.minidom.parseString(probexml.targets_xml([], "mon1", 6789))
    assert doc.documentElement.tagName == "iscsi-target-iqns"
    assert elements(doc.documentElement) == []


def test_luns_sorted_indexed_and_complete():
    images = [("zeta", 2 << 30), ("alpha", 1 << 30), ("mid", 5 << 20)]
    luns = probexml.luns_from_images(images, FSID, "rbd", "")
    doc = xml.dom.minidom.parseString(probexml.luns_xml(luns))
    root = doc.documentElement
    assert root.tagName == "iscsi-target"
    entries = elements(root)
    assert [e.tagName for e in entries] == ["LUN"] * 3
    expected = [("alpha", 1 << 30), ("mid", 5 << 20), ("zeta", 2 << 30)]
    for i, (entry, (name, size)) in enumerate(zip(entries, expected)):
        kids = elements(entry)
        assert [k.tagName for k in kids] == ["vendor", "serial", "LUNid", "size", "SCSIid"]
        vals = dict((k.tagName, text(k)) for k in kids)
        assert vals["vendor"] == "Ceph"
        assert vals["LUNid"] == str(i)  # LUN 0 is printed too
        assert vals["size"] == str(size)
        assert vals["SCSIid"] == name
        assert vals["serial"] == probexml.stable_serial(FSID, "rbd", "", name)


def test_luns_accept_objects_with_name_and_size():
    class Img(object):
        def __init__(self, name, size):
            self.name, self.size = name, size
    luns = probexml.luns_from_images([Img("b", 100 << 20), Img("a", 64 << 20)], FSID, "p", "ns")
    assert [(lun.SCSIid, lun.size, lun.LUNid) for lun in luns] == [("a", 64 << 20, "0"), ("b", 100 << 20, "1")]
    assert luns[0].serial == probexml.stable_serial(FSID, "p", "ns", "a")


def test_zero_size_is_left_out_like_sm():
    luns = probexml.luns_from_images([("empty", 0)], FSID, "rbd", "")
    parsed = probexml.parse_luns(probexml.luns_xml(luns))
    assert parsed == [{"vendor": "Ceph", "serial": luns[0].serial, "LUNid": "0", "SCSIid": "empty"}]


def test_parsers_round_trip():
    t = probexml.parse_targets(probexml.targets_xml(["a", "b"], "::1", 6789))
    assert t == [("0", "::1", "6789", "a"), ("1", "::1", "6789", "b")]
    luns = probexml.luns_from_images([("x", 1 << 30)], FSID, "rbd", "")
    assert probexml.parse_luns(probexml.luns_xml(luns)) == [
        {"vendor": "Ceph", "serial": luns[0].serial, "LUNid": "0", "size": str(1 << 30), "SCSIid": "x"}]


def test_stable_serial_is_deterministic_and_distinct():
    base = probexml.stable_serial(FSID, "rbd", "", "img")
    assert base == probexml.stable_serial(FSID.upper(), "rbd", "", "img")
    others = [probexml.stable_serial(FSID.replace("9f", "00"), "rbd", "", "img"),
              probexml.stable_serial(FSID, "rbd2", "", "img"),
              probexml.stable_serial(FSID, "rbd", "ns", "img"),
              probexml.stable_serial(FSID, "rbd", "", "img1"),
              probexml.stable_serial(FSID, "rb", "d", "img")]
    assert base not in others and len(set(others)) == len(others)
    assert len(base) == 36 and base.count("-") == 4


@pytest.mark.parametrize("name", ["a&b", "<img>", "quote\"d"])
def test_text_is_escaped(name):
    luns = probexml.luns_from_images([(name, 1 << 30)], FSID, "rbd", "")
    assert probexml.parse_luns(probexml.luns_xml(luns))[0]["SCSIid"] == name


def test_empty_srlist():
    doc = xml.dom.minidom.parseString(probexml.empty_srlist())
    assert doc.documentElement.tagName == "SRlist" and elements(doc.documentElement) == []


def _sm_minidom(root, entries):
    """How sm's print_LUNs_XML / print_entries build their documents (minidom)."""
    dom = xml.dom.minidom.Document()
    top = dom.createElement(root)
    dom.appendChild(top)
    for tag, fields in entries:
        entry = dom.createElement(tag)
        top.appendChild(entry)
        for name, text in fields:
            node = dom.createElement(name)
            entry.appendChild(node)
            node.appendChild(dom.createTextNode(str(text)))
    return dom.toprettyxml()


# names an admin may give images: XML-special characters must come out as minidom escapes them
ODD_NAMES = ["plain", "a&b", "<vm>", 'say "hi"', "it's", "ünï", "x" * 200]


def test_luns_xml_is_byte_identical_to_sm_minidom():
    luns = probexml.luns_from_images([(n, (i + 1) << 20) for i, n in enumerate(ODD_NAMES)] + [("zero", 0)],
                                     FSID, "rbd", "")
    attrs = ("vendor", "serial", "LUNid", "size", "SCSIid")
    want = _sm_minidom("iscsi-target", [("LUN", [(a, getattr(lun, a)) for a in attrs if getattr(lun, a)])
                                        for lun in luns])
    assert probexml.luns_xml(luns) == want
    assert [lun["SCSIid"] for lun in probexml.parse_luns(want)] == sorted(ODD_NAMES + ["zero"])


def test_targets_xml_is_byte_identical_to_sm_minidom():
    for port in (6789, 3260):
        fields = [[("Index", i), ("IPAddress", "10.0.0.5")] + ([("Port", port)] if port != 3260 else [])
                  + [("TargetIQN", p)] for i, p in enumerate(ODD_NAMES)]
        want = _sm_minidom("iscsi-target-iqns", [("TGT", f) for f in fields])
        assert probexml.targets_xml(ODD_NAMES, "10.0.0.5", port) == want


def test_empty_documents_are_byte_identical_to_sm_minidom():
    assert probexml.luns_xml([]) == _sm_minidom("iscsi-target", [])
    assert probexml.targets_xml([], "mon1", 6789) == _sm_minidom("iscsi-target-iqns", [])
    assert probexml.empty_srlist() == _sm_minidom("SRlist", [])
