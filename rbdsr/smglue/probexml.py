"""XML answers of the SR wizard's probe steps, in the shapes sm's iSCSI
driver prints (pure functions; the driver prints them on stderr, as sm does,
then raises the matching XenError).

step 1, target + credentials only (sm: BaseISCSISR.print_entries):
    <iscsi-target-iqns>
      <TGT><Index>0</Index><IPAddress>mon</IPAddress><Port>6789</Port>
           <TargetIQN>pool</TargetIQN></TGT> ...
    then ConfigTargetIQNMissing. Each pool is a "target IQN".

step 2, + targetIQN (sm: LVHDoISCSISR.print_LUNs_XML):
    <iscsi-target>
      <LUN><vendor>Ceph</vendor><serial>..</serial><LUNid>0</LUNid>
           <size>bytes</size><SCSIid>image</SCSIid></LUN> ...
    then ConfigSCSIid. Each image is a "LUN"; SCSIid is the image name.

step 3, + SCSIid: sm's normal probe answer (<SRlist>), made by LVHDSR.probe.

The documents are written as text, byte for byte what sm's minidom
`toprettyxml()` prints (tab indent, one-line text elements, &, <, >, " escaped
as dom0's Python 3.6 does): building a DOM for 10,000 LUNs cost the wizard
more than listing the pool. minidom is imported only to parse.
"""
import uuid

ISCSI_DEFAULT_PORT = 3260
VENDOR = "Ceph"

# Namespace of the stable serials (uuid5 of the image's identity).
_SERIAL_NS = uuid.UUID("5b3c6f0e-7f0a-4c8e-9d6b-2f1a4e0c9b71")


def stable_serial(fsid, pool, namespace, image):
    """A serial for an image that is the same on every host and survives
    remaps: derived from the cluster fsid and the image's full name."""
    ident = "%s/%s/%s/%s" % ((fsid or "").lower(), pool, namespace or "", image)
    return str(uuid.uuid5(_SERIAL_NS, ident))


_HEADER = '<?xml version="1.0" ?>\n'


def _esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace(">", "&gt;")


def _document(root, entries):
    """What minidom's toprettyxml() prints for <root> holding one level of
    <entry> elements, each a list of (name, text) children."""
    if not entries:
        return "%s<%s/>\n" % (_HEADER, root)
    out = [_HEADER, "<%s>\n" % root]
    for tag, fields in entries:
        out.append("\t<%s>\n" % tag)
        out.extend("\t\t<%s>%s</%s>\n" % (name, _esc(text), name) for name, text in fields)
        out.append("\t</%s>\n" % tag)
    out.append("</%s>\n" % root)
    return "".join(out)


def targets_xml(pools, address, port):
    """Step 1: one <TGT> per pool, in the given order. `address` is the monitor
    shown as the target's IPAddress; <Port> is present unless it is 3260 (as sm
    prints it)."""
    entries = []
    for index, pool in enumerate(pools):
        fields = [("Index", index), ("IPAddress", address)]
        if int(port) != ISCSI_DEFAULT_PORT:
            fields.append(("Port", int(port)))
        fields.append(("TargetIQN", pool))
        entries.append(("TGT", fields))
    return _document("iscsi-target-iqns", entries)


class LUN(object):
    """One image shown as a LUN (the attributes sm's print_LUNs_XML reads)."""

    __slots__ = ("vendor", "serial", "LUNid", "size", "SCSIid")

    def __init__(self, vendor, serial, LUNid, size, SCSIid):
        self.vendor = vendor
        self.serial = serial
        self.LUNid = LUNid
        self.size = size
        self.SCSIid = SCSIid

    def __repr__(self):
        return "LUN(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def luns_from_images(images, fsid, pool, namespace):
    """[LUN] from [(name, size)] (or objects with .name/.size), sorted by name;
    LUNid is the index in that order, as a string (so LUN 0 is printed)."""
    pairs = []
    for img in images:
        if isinstance(img, tuple):
            pairs.append((img[0], img[1]))
        else:
            pairs.append((img.name, img.size))
    pairs.sort(key=lambda p: p[0])
    return [LUN(VENDOR, stable_serial(fsid, pool, namespace, name), str(i), int(size), name)
            for i, (name, size) in enumerate(pairs)]


def luns_xml(luns):
    """Step 2: one <LUN> per entry; like sm, empty or zero values are left out."""
    attrs = ("vendor", "serial", "LUNid", "size", "SCSIid")
    return _document("iscsi-target", [("LUN", [(a, getattr(lun, a, None)) for a in attrs
                                                if getattr(lun, a, None)]) for lun in luns])


def empty_srlist():
    """sm's probe answer when the device holds no SR."""
    return _document("SRlist", [])


def parse_targets(text):
    """[(Index, IPAddress, Port or None, TargetIQN)] from a step-1 document."""
    import xml.dom.minidom
    dom = xml.dom.minidom.parseString(text)
    out = []
    for tgt in dom.getElementsByTagName("TGT"):
        fields = _children(tgt)
        out.append((fields.get("Index"), fields.get("IPAddress"), fields.get("Port"),
                    fields.get("TargetIQN")))
    return out


def parse_luns(text):
    """[{vendor, serial, LUNid, size, SCSIid}] from a step-2 document."""
    import xml.dom.minidom
    dom = xml.dom.minidom.parseString(text)
    return [_children(lun) for lun in dom.getElementsByTagName("LUN")]


def _children(node):
    fields = {}
    for child in node.childNodes:
        if child.nodeType == child.ELEMENT_NODE:
            fields[child.nodeName] = "".join(
                t.data for t in child.childNodes if t.nodeType == t.TEXT_NODE).strip()
    return fields
