"""The hostile-input table of tests/sm/test_hostile_realsm.py: XML-RPC calls as
a broken or malicious XAPI client could hand to /opt/xensource/sm/LVMoISCSISR
(argv[1]), each with the sm error it must give.

A row is (id, expect, build). `build(ctx)` returns the argv[1] text: either
through `ctx.call(...)` (a well-formed <methodCall> with changes) or raw text.
`expect` is the XenError key (its number comes from the tree's own
XE_SR_ERRORCODES.xml). Rows in ROWS reach RBDSR (the hook diverts them; the
test checks SMlog says so); rows in SM_GATE are refused by sm's own parser
before any driver code runs (counted apart, never towards the 60).

Secret-shaped values are the cluster's real key (ctx.key) or the SSH password
ctx.password, so the leak checks look for the very text that was sent.
"""
import xmlrpc.client

import driverharness as h

TRAVERSAL = "../../../../../../tmp/rbdsr-hostile-pwned"
NL = "6c7bd1c8-0f0e-4f55-9a8f-2f3c6c7d0e11\n/etc/passwd"
RTL = "\u202e6c7bd1c8-0f0e-4f55-9a8f-2f3c6c7d0e11"
BIG = "A" * 10240
SHELL = "$(touch /tmp/rbdsr-hostile-pwned)"
VDI_UUID = "2f0c1f5e-8a5b-4c1e-9a57-3b8f7f4c1d20"
NOT_IN_XAPI_SECRET = "0f8fad5b-d9cb-469f-a165-70867728950e"


def _member(name, value_xml):
    return "<member><name>%s</name><value>%s</value></member>" % (name, value_xml)


def _s(text):
    return "<string>%s</string>" % xmlrpc.client.escape(text)


class Ctx(object):
    """What a row builds its call from: the cluster, the seeded XAPI refs, the
    SR uuid, a valid device-config, and scratch paths."""

    def __init__(self, cluster, pool, plain_pool, key, lp_id, lp_key, sr_uuid, refs, scratch,
                 password, other_sr_image):
        self.cluster = cluster
        self.pool = pool
        self.plain_pool = plain_pool
        self.key = key
        self.lp_id = lp_id
        self.lp_key = lp_key
        self.sr_uuid = sr_uuid
        self.refs = refs
        self.scratch = scratch
        self.password = password
        self.other_sr_image = other_sr_image

    def dconf(self, **changes):
        d = {"target": self.cluster.mon_addr, "port": "6789", "targetIQN": self.pool, "SCSIid": "ours",
             "chapuser": "admin", "chappassword": self.key, "timeout": "10", "SRmaster": "true"}
        return h.edited(d, changes)

    def params(self, cmd, dconf=None, args=None, **changes):
        command = cmd
        p = {"command": command, "device_config": dconf if dconf is not None else self.dconf(),
             "session_ref": "OpaqueRef:session-0", "host_ref": self.refs["hosts"][0],
             "sr_ref": self.refs["sr"], "sr_uuid": self.sr_uuid,
             "args": [] if args is None else args if isinstance(args, (str, list)) else list(args)}
        if command == "sr_probe":
            for k in ("sr_ref", "sr_uuid"):
                p.pop(k)
            p["sr_sm_config"] = {}
        if command.startswith("vdi_"):
            p.update({"vdi_uuid": VDI_UUID, "vdi_location": VDI_UUID, "vdi_ref": "OpaqueRef:VDI-0"})
        for k, v in changes.items():
            if v is None:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    def call(self, cmd, dconf=None, args=None, method=None, **changes):
        return xmlrpc.client.dumps((self.params(cmd, dconf, args, **changes),), method or cmd)

    def dc(self, command="sr_probe", args=None, **dchanges):
        """A call whose device-config differs from the valid one. A probe names
        no image unless the row does: with SCSIid sm's probe maps the image,
        without it the driver lists the pool (the wizard's second step)."""
        if command == "sr_probe":
            dchanges.setdefault("SCSIid", None)
        return self.call(command, self.dconf(**dchanges), args)

    def via_secret(self, command="sr_probe", **changes):
        """A call whose key is a XAPI secret (sm's parser logs argv when the XML is bad)."""
        dconf = self.dconf(chappassword=None, chappassword_secret=self.refs["secrets"][self.key])
        return self.call(command, dconf, **changes)


def _sr_create(size="0", **dchanges):
    return lambda c: c.call("sr_create", c.dconf(**dchanges), [size])


def _vdi(command, args=(), **changes):
    return lambda c: c.call(command, None, list(args), **changes)


def _vdi_create_args(size):
    # SRCommand: args = size, name, description, metadata_of_pool, is_a_snapshot, snapshot_time,
    # snapshot_of, read_only
    return [size, "disk", "desc", "", "false", "", "", "false"]


def _raw_dconf_member(extra_members):
    """A <methodCall> whose device_config struct has hand-written members."""
    def build(c):
        good = c.dconf()
        members = "".join(_member(k, _s(v)) for k, v in sorted(good.items()))
        members += extra_members(c)
        dconf_xml = "<struct>%s</struct>" % members
        p = c.params("sr_probe", {})
        p.pop("device_config")
        rest = xmlrpc.client.dumps((p,), "sr_probe")
        return rest.replace("<struct>\n", "<struct>\n" + _member("device_config", dconf_xml), 1)
    return build


def _keyring(c, name, text):
    path = c.scratch(name)
    with open(path, "w") as f:
        f.write(text)
    return path


ROWS = [
    # -- wrong types where strings go (device-config) -------------------------------------------
    ("dc-target-int", "ConfigTargetMissing", lambda c: c.dc(target=6789)),
    ("dc-target-array", "ConfigTargetMissing", lambda c: c.dc(target=["127.0.0.1", "x"])),
    ("dc-target-struct", "ConfigTargetMissing", lambda c: c.dc(target={"host": "127.0.0.1"})),
    ("dc-targetIQN-int", "ConfigTargetIQNMissing", lambda c: c.dc(targetIQN=1)),
    ("dc-targetIQN-bool", "ConfigTargetIQNMissing", lambda c: c.dc(targetIQN=True)),
    ("dc-chapuser-array", "InvalidArg", lambda c: c.dc(chapuser=["admin"])),
    ("dc-chappassword-struct", "InvalidArg", lambda c: c.dc(chappassword={"k": c.key})),
    ("dc-timeout-double", "InvalidArg", lambda c: c.dc(timeout=2.5)),
    ("dc-size-int", "InvalidArg", lambda c: c.dc("sr_create", ["0"], size=1 << 30)),
    ("dc-secret-array", "InvalidSecret", lambda c: c.dc(chappassword=None, chappassword_secret=[NOT_IN_XAPI_SECRET])),
    # -- hostile text in device-config through the entry point -----------------------------------
    ("dc-target-10k", "ConfigTargetMissing", lambda c: c.dc(target=BIG)),
    ("dc-target-rtl", "ConfigTargetMissing", lambda c: c.dc(target="\u202e127.0.0.1")),
    ("dc-target-newline", "ConfigTargetMissing", lambda c: c.dc(target="127.0.0.1\n192.0.2.1")),
    ("dc-pool-zero-width", "ConfigTargetIQNMissing", lambda c: c.dc(targetIQN="rb\u200bd")),
    ("dc-pool-traversal", "ConfigTargetIQNMissing", lambda c: c.dc(targetIQN="../../etc")),
    ("dc-image-nel", "ConfigSCSIid", lambda c: c.dc(SCSIid="img\u0085x")),
    ("dc-image-snap-spec", "ConfigSCSIid", lambda c: c.dc("sr_create", ["0"], SCSIid="parent@s1")),
    ("dc-image-traversal", "ConfigSCSIid", lambda c: c.dc("sr_create", ["0"], SCSIid="../../dev/sda")),
    ("dc-image-10k", "ConfigSCSIid", lambda c: c.dc(SCSIid=BIG)),
    ("dc-key-in-image", "ConfigSCSIid", lambda c: c.dc(SCSIid=c.key)),
    ("dc-key-in-pool", "ConfigTargetIQNMissing", lambda c: c.dc(targetIQN=c.key)),
    ("dc-key-in-target", "ConfigTargetMissing", lambda c: c.dc(target=c.key)),
    ("dc-key-in-chapuser", "InvalidArg", lambda c: c.dc(chapuser=c.key)),
    ("dc-key-in-cephx-id", "InvalidArg", lambda c: c.dc(cephx_id=c.key)),
    ("dc-key-in-size", "InvalidArg", lambda c: c.dc("sr_create", ["0"], size=c.key)),
    ("dc-key-in-timeout", "InvalidArg", lambda c: c.dc(timeout=c.key)),
    ("dc-key-in-ceph-conf", "InvalidArg", lambda c: c.dc(ceph_conf=c.key)),
    ("dc-key-in-secret-uuid", "InvalidSecret", lambda c: c.dc(chappassword=None, chappassword_secret=c.key)),
    ("dc-password-in-ssh-host", "InvalidArg", lambda c: c.dc(auth="ssh", chapuser="deploy",
                                                            chappassword=c.password, ssh_host=c.password)),
    ("dc-ssh-port-closed", "ISCSITarget", lambda c: c.dc(auth="ssh", chapuser="deploy", chappassword=c.password,
                                                         ssh_host_key="SHA256:" + "Q" * 43, ssh_host="127.0.0.1",
                                                         ssh_port="1", timeout="3")),
    ("dc-secret-not-in-xapi", "InvalidSecret", lambda c: c.dc(chappassword=None,
                                                              chappassword_secret=NOT_IN_XAPI_SECRET)),
    ("dc-duplicate-password", "InvalidArg",
     _raw_dconf_member(lambda c: _member("chappassword", _s("not-a-key-at-all")))),
    ("dc-duplicate-targetIQN-empty", "ConfigTargetIQNMissing",
     _raw_dconf_member(lambda c: _member("targetIQN", _s("")))),
    # -- keyring files ---------------------------------------------------------------------------
    ("keyring-dev-zero", "InvalidArg", lambda c: c.dc(chappassword=None, keyring="/dev/zero")),
    ("keyring-directory", "InvalidArg", lambda c: c.dc(chappassword=None, keyring="/etc")),
    ("keyring-fifo", "InvalidArg", lambda c: c.dc(chappassword=None, keyring=c.scratch("fifo"))),
    ("keyring-huge", "InvalidArg", lambda c: c.dc(chappassword=None, keyring=c.scratch("huge"))),
    ("keyring-symlink-shadow", "InvalidArg", lambda c: c.dc(chappassword=None, keyring=c.scratch("to-shadow"))),
    ("keyring-binary", "InvalidArg", lambda c: c.dc(chappassword=None, keyring=_keyring(
        c, "binary", "\udcff\udcfe".encode("utf-8", "surrogateescape").decode("latin-1")))),
    ("keyring-other-entity", "InvalidArg", lambda c: c.dc(chappassword=None, keyring=_keyring(
        c, "other", "[client.someone]\n\tkey = %s\n" % c.key))),
    ("keyring-bad-key", "InvalidArg", lambda c: c.dc(chappassword=None, keyring=_keyring(
        c, "badkey", "[client.admin]\n\tkey = %s\n" % c.password))),
    ("keyring-missing", "InvalidArg", lambda c: c.dc(chappassword="/nonexistent/rbdsr/keyring")),
    # -- sr_uuid ---------------------------------------------------------------------------------
    ("sr-uuid-traversal", "InvalidArg", lambda c: c.call("sr_attach", sr_uuid=TRAVERSAL)),
    ("sr-uuid-newline", "InvalidArg", lambda c: c.call("sr_detach", sr_uuid=NL)),
    ("sr-uuid-10k", "InvalidArg", lambda c: c.call("sr_scan", sr_uuid=BIG)),
    ("sr-uuid-shell", "InvalidArg", lambda c: c.call("sr_delete", sr_uuid=SHELL)),
    ("sr-uuid-rtl", "InvalidArg", lambda c: c.call("sr_update", sr_uuid=RTL)),
    ("sr-uuid-key", "InvalidArg", lambda c: c.call("sr_attach", sr_uuid=c.key)),
    ("sr-uuid-int", "InvalidArg", lambda c: c.call("sr_attach", sr_uuid=42)),
    ("sr-uuid-array", "InvalidArg", lambda c: c.call("sr_detach", sr_uuid=[c.sr_uuid])),
    ("sr-uuid-missing", "InvalidArg", lambda c: c.call("sr_attach", sr_uuid=None)),
    ("sr-uuid-empty-create", "InvalidArg", lambda c: c.call("sr_create", args=["0"], sr_uuid="")),
    # -- vdi_uuid / vdi_location -----------------------------------------------------------------
    ("vdi-uuid-traversal", "InvalidArg", _vdi("vdi_attach", ["true"], vdi_uuid=TRAVERSAL, vdi_location=TRAVERSAL)),
    ("vdi-uuid-newline", "InvalidArg", _vdi("vdi_delete", vdi_uuid=NL)),
    ("vdi-uuid-10k", "InvalidArg", _vdi("vdi_snapshot", vdi_uuid=BIG)),
    ("vdi-uuid-key", "InvalidArg", lambda c: c.call("vdi_clone", vdi_uuid=c.key, vdi_location=c.key)),
    ("vdi-location-traversal", "InvalidArg", _vdi("vdi_activate", ["true"], vdi_location=TRAVERSAL)),
    ("vdi-location-key", "InvalidArg", lambda c: c.call("vdi_detach", vdi_location=c.key)),
    ("vdi-uuid-int", "InvalidArg", _vdi("vdi_generate_config", vdi_uuid=7)),
    ("vdi-uuid-struct", "InvalidArg", _vdi("vdi_deactivate", vdi_uuid={"uuid": VDI_UUID})),
    ("vdi-uuid-missing-delete", "InvalidArg", _vdi("vdi_delete", vdi_uuid=None, vdi_location=None)),
    ("vdi-uuid-rtl", "InvalidArg", _vdi("vdi_update", vdi_uuid=RTL)),
    # -- args: sizes and counts ------------------------------------------------------------------
    ("sr-create-size-negative", "InvalidArg", _sr_create("-1")),
    ("sr-create-size-words", "InvalidArg", _sr_create("lots")),
    ("sr-create-size-float", "InvalidArg", _sr_create("1e12")),
    ("sr-create-size-huge", "InvalidArg", _sr_create("9" * 40, SCSIid="new-huge")),
    ("sr-create-size-key", "InvalidArg", lambda c: c.call("sr_create", args=[c.key])),
    ("sr-create-args-missing", "InvalidArg", lambda c: c.call("sr_create", args=[])),
    ("sr-create-args-string", "InvalidArg", lambda c: c.call("sr_create", args="1073741824")),
    ("sr-create-args-int", "InvalidArg", lambda c: c.call("sr_create", args=[1 << 30])),
    ("vdi-create-size-negative", "VDISize", _vdi("vdi_create", _vdi_create_args("-4096"))),
    ("vdi-create-size-words", "VDISize", _vdi("vdi_create", _vdi_create_args("big"))),
    ("vdi-create-size-huge", "VDISize", _vdi("vdi_create", _vdi_create_args("9" * 30))),
    ("vdi-create-args-short", "VDISize", _vdi("vdi_create", [])),
    ("vdi-resize-negative", "VDISize", _vdi("vdi_resize", ["-1"])),
    ("vdi-resize-words", "VDISize", _vdi("vdi_resize", ["twice"])),
    ("vdi-resize-huge", "VDISize", _vdi("vdi_resize_online", ["1" + "0" * 25])),
    ("vdi-resize-key", "InvalidArg", lambda c: c.call("vdi_resize", args=[c.key])),
    # -- commands and the call's other fields -----------------------------------------------------
    ("command-unknown-sr", "BadRequest", lambda c: c.call("sr_frobnicate")),
    ("command-unknown-vdi", "BadRequest", lambda c: c.call("vdi_frobnicate")),
    ("command-mismatch", "BadRequest", lambda c: c.call("sr_delete", method="sr_probe")),
    ("command-key-shaped", "InvalidArg", lambda c: c.call("sr_probe", method="sr_probe", command=c.key)),
    ("host-ref-junk", "ConfigTargetIQNMissing", lambda c: c.call("sr_probe", c.dconf(targetIQN=None),
                                                                 host_ref="OpaqueRef:" + "\u202e" * 10)),
    ("host-ref-int", "ConfigTargetIQNMissing", lambda c: c.call("sr_probe", c.dconf(targetIQN=None), host_ref=12)),
    ("session-ref-10k", "ConfigTargetIQNMissing", lambda c: c.call("sr_probe", c.dconf(targetIQN=None),
                                                                   session_ref=BIG)),
    ("extra-members", "ConfigTargetIQNMissing", lambda c: c.call("sr_probe", c.dconf(targetIQN=None),
                                                                 vdi_uuid=TRAVERSAL, frob={"a": [1, 2]})),
    ("sm-config-array", "ConfigTargetIQNMissing", lambda c: c.call("sr_probe", c.dconf(targetIQN=None),
                                                                   sr_sm_config=["a", "b"])),
    ("sm-config-key", "InvalidArg", lambda c: c.call("sr_probe", c.dconf(targetIQN=None),
                                                     sr_sm_config={"note": c.key})),
    ("key-in-host-ref", "InvalidArg", lambda c: c.call("sr_probe", c.dconf(targetIQN=None), host_ref=c.key)),
    ("key-in-args", "InvalidArg", lambda c: c.call("sr_probe", c.dconf(targetIQN=None), args=[c.key])),
    # -- Ceph answers: a cluster state that is hostile --------------------------------------------
    ("ceph-unshareable-features", "ConfigSCSIid", _sr_create(SCSIid="feat")),
    ("ceph-image-claimed-by-other-sr", "SRInUse", lambda c: c.call("sr_create", c.dconf(SCSIid=c.other_sr_image),
                                                                  ["0"])),
    ("ceph-image-is-clone", "ConfigSCSIid", _sr_create(SCSIid="child")),
    ("ceph-pool-without-rbd-app", "ConfigTargetIQNMissing", lambda c: c.call(
        "sr_create", c.dconf(targetIQN=c.plain_pool, SCSIid="new-plain", size="64M"), ["0"])),
    ("ceph-missing-image-no-size", "ConfigSCSIid", _sr_create(SCSIid="not-there")),
    ("ceph-wrong-key", "ISCSILogin", lambda c: c.dc(chappassword=c.lp_key)),
    ("ceph-unknown-user", "ISCSILogin", lambda c: c.dc(chapuser="rbdsr-nobody")),
    ("ceph-user-without-caps-on-pool", "ISCSILogin", lambda c: c.call(
        "sr_create", c.dconf(targetIQN=c.plain_pool, SCSIid="new-lp", size="64M", chapuser=c.lp_id,
                             chappassword=c.lp_key), ["0"])),
    ("ceph-mon-unreachable", "ISCSITarget", lambda c: c.dc(target="127.0.0.1:1", timeout="3")),
    ("ceph-name-unresolvable", "DNSError", lambda c: c.dc(target="no-such-mon.invalid")),
]

# Stopped by sm's own parser (SRCommand.parse): the driver never runs.
SM_GATE = [
    ("xml-truncated", "BadRequest", lambda c: c.via_secret()[:200]),
    ("xml-not-xml", "BadRequest", lambda c: "sr_probe port=6789 target=127.0.0.1"),
    ("xml-nul-reference", "BadRequest", lambda c: c.via_secret().replace("<string>6789", "<string>67&#0;89")),
    ("xml-control-char", "BadRequest", lambda c: c.via_secret().replace("<string>6789", "<string>6789\x01")),
    ("xml-no-params", "BadRequest", lambda c: "<?xml version='1.0'?><methodCall><methodName>sr_probe"
     "</methodName><params></params></methodCall>"),
    ("xml-params-not-struct", "BadRequest", lambda c: xmlrpc.client.dumps((["device_config", "x"],), "sr_probe")),
    ("xml-no-device-config", "BadRequest", lambda c: c.via_secret(device_config=None)),
    ("xml-oversized-100k", "BadRequest", lambda c: c.via_secret()[:-40] + "A" * 100000),
]


def _entity_expansion(c):
    """Internal entities (expat expands them, within its amplification limit)
    turning SCSIid into 1,000 characters."""
    doctype = ('<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
               '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>')
    head, body = c.dc(SCSIid="ours").split("?>", 1)
    return head + "?>" + doctype + body.replace("<string>ours</string>", "<string>&c;</string>")


ROWS.append(("xml-entity-expansion", "ConfigSCSIid", _entity_expansion))


def count(rows):
    return len(set(r[0] for r in rows))
