"""A stand-in dom0 in the VM lab guest, laid out from a real sm tree of ../shared/sm, for
running RBDSR through real sm on a real kernel: the guest's root is the dom0 (the VM boots
with snapshot=on, and `remove()` puts back everything `install()` changed).

What is real: sm (the tree, laid out from its manifest as its `make install` does), the
kernel (krbd, device-mapper), LVM (dom0's shipped /etc/lvm), vhd-util (built from blktap
into the image), sm's GC (cleanup.py, run by the systemctl stand-in from sm's own
SMGC@.service unit). What stands in, with real names and formats: XAPI (the JSON-backed
tests/fakesm/xapi/XenAPI.py, and this module's `Pool` playing XAPI's part around each
call), systemd (tests/dom0bin/systemctl), syslog (tests/sm/stubs: SMlog lines to a file),
fairlock (a no-op lock; LVM's own locks still apply) and bitarray (CBT only).

A second host is the same kernel: its calls run in a private mount namespace whose
/etc/xensource-inventory names host 1 (sm finds "this host" there); devices, LVM and
/var/lock/sm are shared with the master, so it can show what a slave's sr_attach/detach
does, not two kernels racing.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [p for p in (os.path.join(REPO, "tests"), os.path.join(REPO, "tests", "sm")) if p not in sys.path]

import driverharness as h  # noqa: E402  (argv XML-RPC calls, results, the XAPI stand-in)
import realsm  # noqa: E402  (tests/sm: the syslog/fairlock stubs)
import smdom0  # noqa: E402  (tests: laying a real sm tree and dom0's /etc/lvm out)

SM_TREES = smdom0.shared_sm_dir()
SM_DIR = "/opt/xensource/sm"
SITE = "/usr/lib/python3.11/site-packages"   # dom0's site-packages, here for the guest's python3.11
DIST = "/usr/lib/python3/dist-packages"      # dom0 has XenAPI, fairlock, bitarray in site-packages
UNIT_DIR = "/usr/lib/systemd/system"         # sm's Makefile: SYSTEMD_SERVICE_DIR
SYSTEMCTL = "/usr/bin/systemctl"             # sm runs this path, not a PATH lookup
SYSTEMCTL_STANDIN = os.path.join(REPO, "tests", "dom0bin", "systemctl")
SYSTEM_CONF = "/etc/systemd/system.conf"
INVENTORY = "/etc/xensource-inventory"
PLUGIN_DIR = "/etc/xapi.d/plugins"          # XAPI's host plugins (sm's on-slave, tapdisk-pause...)

# Every (real sm tree, dom0 LVM config, full path?) the lifecycle runs on. Today's XCP-ng 8.3
# gets the full matrix, and so do XenServer 8 and the sm package, all with dom0's LVM config
# as shipped (CA-410086: /dev/disk/by-id only); the 2025 XCP-ng tree (same shape as XenServer
# 8) takes the shorter path, with the older LVM config (pre-CA-410086: scan /dev) that hosts
# not updated since still have. LVM config: a directory of ../shared/lvm, or SHIPPED.
PRE_CA = "pre-CA-410086"
SHIPPED = ""
LIFECYCLES = [
    ("xcpng-8.3", SHIPPED, True),
    ("xs8", SHIPPED, True),
    ("xapi-master", SHIPPED, True),
    ("xcpng-8.3-2025", PRE_CA, False),
]


def plugin_files(tree_id):
    """{plugin name: source file} as the tree's `make install` puts them in /etc/xapi.d/plugins."""
    src = os.path.join(SM_TREES, tree_id)
    if os.path.isdir(os.path.join(src, "scripts", "plugins")):  # package tree: every file there
        d = os.path.join(src, "scripts", "plugins")
        return dict((n, os.path.join(d, n)) for n in sorted(os.listdir(d)))
    out = {}
    with open(os.path.join(src, "Makefile")) as f:
        for m in re.finditer(r"install -m 755 (drivers/\S+) \$\(SM_STAGING\)\$\(PLUGIN_SCRIPT_DEST\)(?:/(\S+))?",
                             f.read()):
            out[m.group(2) or os.path.basename(m.group(1))] = os.path.join(src, m.group(1))
    return out


def tree_sums(tops):
    """sha256 of every file and the target of every symlink under tops."""
    sums = {}
    for top in tops:
        for dirpath, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in dirs + files:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    sums[p] = "link:" + os.readlink(p)
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        sums[p] = hashlib.sha256(f.read()).hexdigest()
    return sums


class Dom0(object):
    """The guest's root as a dom0 with the real sm tree `tree_id`."""

    def __init__(self, tree_id, work, results, name=None):
        self.tree_id = tree_id
        self.sm = smdom0.SMSource(tree_id, os.path.join(SM_TREES, tree_id))
        self.src = self.sm.path
        self.layout = "package" if self.sm.package else "flat"
        self.work = work
        self.results = results
        self.smlog = os.path.join(results, "SMlog-%s" % (name or tree_id))
        self.db = os.path.join(work, "xapi.json")
        self.script = os.path.join(SM_DIR, "LVMoISCSISR")
        self._saved = {}      # path -> backup path (or None: did not exist)

    # -- laying the dom0 out ------------------------------------------------------

    def _save(self, path):
        """Remember path as it was (once), so remove() puts it back."""
        if path in self._saved:
            return
        if os.path.lexists(path):
            bak = os.path.join(self.work, "saved", path.lstrip("/"))
            os.makedirs(os.path.dirname(bak), exist_ok=True)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.copytree(path, bak, symlinks=True)
            else:
                shutil.copy2(path, bak, follow_symlinks=False)
            self._saved[path] = bak
        else:
            self._saved[path] = None

    def _put(self, path, data=None, copy_from=None, mode=0o644):
        self._save(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
        if copy_from:
            shutil.copy2(copy_from, path)
        else:
            with open(path, "w") as f:
                f.write(data)
        os.chmod(path, mode)

    def install(self, lvm_variant=PRE_CA):
        os.makedirs(self.work, exist_ok=True)
        tops = ["/" + p for p in smdom0.sm_tops(self.sm, SITE.lstrip("/"))]
        for p in tops + ["/etc/lvm", "/etc/xapi.d", "/var/lock/sm", "/dev/sm", "/run/nonpersistent"]:
            self._save(p)
        for p in tops + ["/var/lock/sm"]:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            elif os.path.lexists(p):
                os.unlink(p)
        smdom0.lay_sm(self.sm, "/", SITE.lstrip("/"))
        # dom0's python3 has its site-packages on sys.path; Debian's python3 gets it as a
        # site dir (its .pth files processed, e.g. the installer's rbdsr.pth)
        self._put(os.path.join(DIST, "dom0-site-packages.pth"), "import site; site.addsitedir(%r)\n" % SITE)
        # dom0's python has XenAPI(Plugin), fairlock and bitarray: stand-ins take their place
        for name in ("XenAPI.py", "XenAPIPlugin.py"):
            self._put(os.path.join(DIST, name), copy_from=os.path.join(h.XAPI_STUB, name))
        # sm's host plugins, which XAPI (here its stand-in) runs for host.call_plugin
        for name, path in plugin_files(self.tree_id).items():
            self._put(os.path.join(PLUGIN_DIR, name), copy_from=path, mode=0o755)
        for name in ("fairlock.py", "bitarray.py"):
            self._put(os.path.join(DIST, name), copy_from=os.path.join(realsm.STUBS, name))
        # systemd: sm's GC unit where sm installs it, systemctl where sm runs it
        self._put(os.path.join(UNIT_DIR, "SMGC@.service"),
                  copy_from=os.path.join(self.src, "systemd", "SMGC@.service"))
        self._put(SYSTEMCTL, copy_from=SYSTEMCTL_STANDIN, mode=0o755)
        # what systemd gives every service (DefaultEnvironment=): here, where sm logs and
        # where the XAPI stand-in keeps its records
        self._put(SYSTEM_CONF, "[Manager]\nDefaultEnvironment=%s\n" % " ".join(
            '"%s=%s"' % kv for kv in sorted(self.service_env().items())))
        # dom0's shipped LVM config (both /etc/lvm and /etc/lvm/master)
        smdom0.lay_lvm("/", lvm_variant or smdom0.SHIPPED_LVM)
        for d in ("/var/lock/sm", "/dev/sm", "/run/nonpersistent"):
            os.makedirs(d, exist_ok=True)
        if not os.path.lexists("/etc/mtab"):  # dom0 has it; sm reads it (block scheduler)
            self._save("/etc/mtab")
            os.symlink("../proc/self/mounts", "/etc/mtab")
        self.sm_sums = tree_sums([SM_DIR, os.path.join(SITE, "sm")])
        return "%s (%s layout) at %s" % (self.tree_id, self.layout,
                                         SM_DIR if self.layout == "flat" else os.path.join(SITE, "sm"))

    def service_env(self):
        """What the real sm processes need that dom0 has elsewhere (syslog -> SMlog file)."""
        return {"PYTHONPATH": os.pathsep.join([realsm.STUBS, SITE]), "SMLOG": self.smlog, "FAKEXAPI_DB": self.db}

    def remove(self):
        for path, bak in sorted(self._saved.items(), reverse=True):
            if os.path.lexists(path):
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
            if bak:
                if os.path.isdir(bak) and not os.path.islink(bak):
                    shutil.copytree(bak, path, symlinks=True)
                else:
                    shutil.copy2(bak, path, follow_symlinks=False)
        self._saved = {}

    def write_inventory(self, host_uuid, dom0_uuid, path=INVENTORY):
        if path == INVENTORY:
            self._save(path)
        with open(path, "w") as f:
            f.write("PRODUCT_BRAND='XenServer'\nPRODUCT_VERSION='8.4.0'\nPLATFORM_VERSION='3.4.0'\n"
                    "INSTALLATION_UUID='%s'\nCONTROL_DOMAIN_UUID='%s'\nPRIMARY_DISK='/dev/vda'\n"
                    % (host_uuid, dom0_uuid))

    # -- running sm as XAPI does --------------------------------------------------

    def env(self):
        env = dict(os.environ)
        env.update(self.service_env())
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], os.path.join(REPO, "tests", "fakesm", "xapi")])
        for k in ("LVM_SYSTEM_DIR", "PYTHONDONTWRITEBYTECODE"):
            env.pop(k, None)
        return env

    def run(self, call, inventory=None, timeout=900):
        """Execute sm's LVMoISCSISR with the XML-RPC call as argv[1]; inventory: another
        host's /etc/xensource-inventory, bound over dom0's in a private mount namespace."""
        before = os.path.getsize(self.smlog) if os.path.exists(self.smlog) else 0
        argv = [sys.executable, self.script, call]
        if inventory:
            argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount --bind "$0" %s && exec "$@"' % INVENTORY, inventory] + argv
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=timeout, env=self.env(), cwd="/")
        log = ""
        if os.path.exists(self.smlog):
            with open(self.smlog) as f:
                f.seek(before)
                log = f.read()
        return h.Result(argv[-3:], p.returncode, p.stdout, p.stderr, log)


class Pool(object):
    """XAPI's part: the records (in the XAPI stand-in's database) and the calls it makes
    to the SR's driver, with the parameters XAPI's sm_exec passes."""

    def __init__(self, dom0, dconf, secrets, hosts=2):
        self.dom0 = dom0
        self.sr_uuid = h.new_uuid()
        os.environ["FAKEXAPI_DB"] = dom0.db
        self.refs = h.XenAPI.seed(dom0.db, sr_uuid=self.sr_uuid, device_config={}, secrets=secrets,
                                  extra_hosts=hosts - 1)
        db = h.XenAPI.load_db(dom0.db)
        self.host_uuids = [db["host"][r]["uuid"] for r in self.refs["hosts"]]
        self.dom0_uuids = [h.new_uuid() for _ in self.refs["hosts"]]
        for i, href in enumerate(self.refs["hosts"]):
            db["VM"]["OpaqueRef:dom0-%d" % i] = {"uuid": self.dom0_uuids[i], "resident_on": href,
                                                 "is_control_domain": True, "name_label": "Control domain"}
        db["pool"]["OpaqueRef:pool-0"] = {"uuid": h.new_uuid(), "master": self.refs["hosts"][0],
                                          "name_label": "", "other_config": {}}
        h.XenAPI.save_db(db, dom0.db)
        dom0.write_inventory(self.host_uuids[0], self.dom0_uuids[0])
        self.inventories = [None]
        for i in range(1, hosts):
            p = os.path.join(dom0.work, "inventory-host%d" % i)
            dom0.write_inventory(self.host_uuids[i], self.dom0_uuids[i], path=p)
            self.inventories.append(p)
        self.set_dconf(dconf)

    def set_dconf(self, dconf):
        self.dconf = dict(dconf)
        db = h.XenAPI.load_db(self.dom0.db)
        for pbd in db["PBD"].values():
            pbd["device_config"] = dict(self.dconf)
        h.XenAPI.save_db(db, self.dom0.db)

    def db(self):
        return h.XenAPI.load_db(self.dom0.db)

    def sr(self):
        return self.db()["SR"][self.refs["sr"]]

    def vdi_ref(self, uuid):
        for ref, rec in self.db()["VDI"].items():
            if rec.get("uuid") == uuid:
                return ref
        return None

    def vdi(self, uuid):
        return self.db()["VDI"].get(self.vdi_ref(uuid))

    def call(self, command, host=0, args=None, vdi=None, extra=None, expect_ok=True):
        dc = dict(self.dconf)
        if host == 0:
            dc["SRmaster"] = "true"
        params = dict(extra or {})
        if vdi is not None:
            ref = self.vdi_ref(vdi)
            if ref:
                params.setdefault("vdi_ref", ref)
                params.setdefault("vdi_location", self.db()["VDI"][ref].get("location", vdi))
                params.setdefault("vdi_on_boot", "persist")
                params.setdefault("vdi_allow_caching", "false")
        c = h.method_call(command, dc, sr_uuid=self.sr_uuid, sr_ref=self.refs["sr"],
                          host_ref=self.refs["hosts"][host], args=args, vdi_uuid=vdi, extra=params)
        if vdi is not None and "vdi_location" in params:
            # method_call sets vdi_location = uuid; XAPI passes the record's location
            (p,), m = xmlrpc.client.loads(c)
            p["vdi_location"] = params["vdi_location"]
            c = xmlrpc.client.dumps((p,), m)
        r = self.dom0.run(c, inventory=self.inventories[host])
        if expect_ok and not r.ok:
            raise AssertionError("%s (host %d) failed: %s %s\nSMlog tail:\n%s\nstderr:\n%s"
                                 % (command, host, r.fault_code, r.fault_string, r.smlog[-6000:],
                                    r.stderr[-3000:]))
        return r

    def probe(self, dconf):
        return self.dom0.run(h.method_call("sr_probe", dict(dconf), host_ref=self.refs["hosts"][0]))

    def plug(self, host, attached):
        """XAPI records a PBD as plugged after sr_attach, unplugged after sr_detach."""
        db = self.db()
        for pbd in db["PBD"].values():
            if pbd["host"] == self.refs["hosts"][host] and pbd["SR"] == self.refs["sr"]:
                pbd["currently_attached"] = attached
        h.XenAPI.save_db(db, self.dom0.db)

    # -- the VDI calls, with what XAPI does after them ---------------------------

    def vdi_create(self, size, label="disk"):
        vdi = h.new_uuid()
        r = self.call("vdi_create", vdi=vdi, args=[str(size), label, "", "", "false", "", "", "false"],
                      extra={"vdi_type": "user", "vdi_sm_config": {}})
        return _struct(r)["uuid"]

    def vdi_snapshot(self, vdi, clone=False):
        r = self.call("vdi_clone" if clone else "vdi_snapshot", vdi=vdi, extra={"driver_params": {}})
        new = _struct(r)["uuid"]
        db = self.db()
        rec, orig = db["VDI"][self.vdi_ref(new)], db["VDI"][self.vdi_ref(vdi)]
        # XAPI copies across the metadata it controls (xapi_vdi's snapshot_and_clone): sm's
        # record of the new VDI has no name; sm syncs XAPI's names into its MGT volume later
        for field in ("name_label", "name_description", "type", "sharable", "other_config",
                      "xenstore_data", "on_boot", "allow_caching"):
            if field in orig:
                rec[field] = orig[field]
        if not clone:
            # XAPI marks the new VDI as a snapshot of the original (sm does not)
            rec.update(is_a_snapshot=True, snapshot_of=self.vdi_ref(vdi),
                       snapshot_time=time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime()))
        h.XenAPI.save_db(db, self.dom0.db)
        return new

    def vdi_attach(self, vdi, writable=True):
        return _struct(self.call("vdi_attach", vdi=vdi, args=["true" if writable else "false"]))

    # -- sm's GC, through the systemctl stand-in ----------------------------------

    def gc_unit(self):
        return "SMGC@%s.service" % self.sr_uuid.replace("-", "\\x2d")

    def gc_state(self):
        p = subprocess.run([SYSTEMCTL, "show", self.gc_unit(), "-p", "ActiveState", "-p", "Result",
                            "-p", "ExecMainStatus", "-p", "Starts"], stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=60, env=self.dom0.env())
        return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)

    def wait_gc(self, starts_before, timeout=900):
        """Wait for a GC run started after `starts_before` runs to end; return its state."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.gc_state()
            if int(st.get("Starts") or 0) > starts_before and st["ActiveState"] != "activating":
                return st
            if time.monotonic() > deadline:
                raise AssertionError("sm's GC did not finish within %d s: %s" % (timeout, st))
            time.sleep(1)


def _struct(r):
    v = r.value
    return v if isinstance(v, dict) else xmlrpc.client.loads(v)[0][0]


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True, default=str)
