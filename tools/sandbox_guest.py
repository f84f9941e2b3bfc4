#!/usr/bin/env python3
"""The sandbox's guest half (run by tools/sandbox inside the VM lab): the whole
SR and VDI lifecycle on a real kernel, real Ceph and real LVM, through the
driver's real entry point -- sm's LVMoISCSISR script executed with the XML-RPC
call as argv[1], exactly as XAPI runs it -- after install_rbdsr.py has hooked sm.

With ../shared beside the repository (the VM lab shares it read-only), the
stand-in dom0 is today's XCP-ng 8.3: its real sm tree (../shared/sm/xcpng-8.3)
laid out from its manifest, dom0's /etc/lvm as shipped, vhd-util built from
blktap, sm's GC run by the systemctl stand-in; the steps are the VM tier's
(tests/vm/realsm_lifecycle.py). RBDSR_SANDBOX_TREE picks another tree of
../shared/sm. Without ../shared it falls back to the project's sm stand-in and
says so in its summary. The VM is booted with snapshot=on: nothing survives it.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import xml.dom.minidom
import xmlrpc.client

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests"), os.path.join(REPO, "tools")]

import driverharness as h  # noqa: E402  (tests/: argv XML-RPC calls, XAPI stand-in)
from cephlab import cluster as cephlab  # noqa: E402

sys.path[:0] = [os.path.join(REPO, "tests", "sm"), os.path.join(REPO, "tests", "vm")]
import realsm  # noqa: E402  (tests/sm: the syslog/fairlock stand-ins)

MIB = 1 << 20
SM_DIR = "/opt/xensource/sm"
SITE = "/usr/lib/python3.11/site-packages"  # where the `sm` package goes (xapi-project/sm layout)
DIST = "/usr/lib/python3/dist-packages"     # Debian's: XenAPI and fairlock stand-ins, as dom0 has them
WORK = "/var/tmp/rbdsr-sandbox"
RESULTS = os.environ.get("RBDSR_VM_RESULTS", WORK)
IMAGE = "xcp-sr1"
CEPHX_ID = "xcpng"


class Steps(object):
    """Runs named steps, prints each with its result and time, keeps the table."""

    def __init__(self):
        self.rows = []
        self.t0 = time.time()

    def run(self, name, fn, *args):
        print("\n>>> %s" % name, flush=True)
        t = time.time()
        try:
            detail = fn(*args) or ""
            status = "ok"
        except Exception as e:  # noqa: BLE001 - a step's failure is reported, then we stop
            traceback.print_exc()
            detail, status = "%s: %s" % (type(e).__name__, e), "FAILED"
        dt = time.time() - t
        self.rows.append((name, status, dt, detail))
        print("<<< %-8s %6.1f s  %s" % (status, dt, detail), flush=True)
        if status == "FAILED":
            raise SystemExit(self.summary(1))
        return detail

    def summary(self, rc=0):
        print("\n%-44s %-8s %8s  %s" % ("step", "result", "seconds", "detail"))
        print("-" * 110)
        for name, status, dt, detail in self.rows:
            print("%-44s %-8s %8.1f  %s" % (name, status, dt, detail[:60]))
        failed = sum(1 for r in self.rows if r[1] == "FAILED")
        print("-" * 110)
        print("sandbox: the project's sm stand-in (no ../shared/sm here); %d steps, %d ok, %d failed, "
              "%d not run here; %.0f s in the VM"
              % (len(self.rows), sum(1 for r in self.rows if r[1] == "ok"), failed,
                 sum(1 for r in self.rows if r[1] == "not run"), time.time() - self.t0))
        with open(os.path.join(RESULTS, "sandbox-summary.json"), "w") as f:
            json.dump([dict(zip(("step", "result", "seconds", "detail"), r)) for r in self.rows], f, indent=1)
        return rc or (1 if failed else 0)


def sh(argv, timeout=300, check=True, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(argv), p.returncode, p.stdout))
    return p


class Dom0(object):
    """The stand-in dom0: XAPI's records (a JSON database) and the sm script."""

    def __init__(self, ceph_state, real_sm):
        self.ceph = ceph_state
        self.real_sm = real_sm
        self.db = os.path.join(WORK, "xapi.json")
        self.smlog = os.path.join(RESULTS, "SMlog")
        self.script = os.path.join(SM_DIR, "LVMoISCSISR")
        self.sr_uuid = h.new_uuid()
        self.refs = None
        self.dconf = None
        self.key = None

    def env(self, master):
        env = dict(os.environ)
        # real sm logs through syslog: the stubs' sitecustomize sends it to SMLOG
        path = ([realsm.STUBS, SITE] if self.real_sm else []) + [SM_DIR, h.XAPI_STUB]
        env.update({"PYTHONPATH": os.pathsep.join(path), "SMLOG": self.smlog,
                    "FAKEXAPI_DB": self.db, "FAKESM_LOCKDIR": os.path.join(WORK, "locks")})
        env.pop("LVM_SYSTEM_DIR", None)
        return env

    def run(self, call, master=True):
        before = os.path.getsize(self.smlog) if os.path.exists(self.smlog) else 0
        p = subprocess.run([sys.executable, self.script, call], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=900,
                           env=self.env(master), cwd=WORK)
        with open(self.smlog) as f:
            f.seek(before)
            log = f.read()
        r = h.Result([self.script], p.returncode, p.stdout, p.stderr, log)
        for text in (r.stdout, r.stderr, r.smlog):
            if "Traceback" in text:
                raise RuntimeError("a traceback reached the caller:\n" + text[-3000:])
            if self.key and self.key in text and call.find("vdi_generate_config") < 0:
                raise RuntimeError("the cephx key leaked into the driver's output or SMlog")
        return r

    def call(self, command, host=0, args=None, vdi=None, extra=None):
        dc = dict(self.dconf)
        if host == 0:
            dc["SRmaster"] = "true"
        c = h.method_call(command, dc, sr_uuid=self.sr_uuid, sr_ref=self.refs["sr"],
                          host_ref=self.refs["hosts"][host], args=args, vdi_uuid=vdi, extra=extra)
        r = self.run(c, master=host == 0)
        if not r.ok:
            raise RuntimeError("%s failed: %s %s" % (command, r.fault_code, r.fault_string))
        return r

    def probe(self, dconf):
        return self.run(h.method_call("sr_probe", dconf, host_ref=self.refs["hosts"][0]))

    def sr_record(self):
        return h.XenAPI.load_db(self.db)["SR"][self.refs["sr"]]


def main():
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(os.path.join(WORK, "locks"), exist_ok=True)
    import realdom0
    tree = os.environ.get("RBDSR_SANDBOX_TREE", "xcpng-8.3")
    if os.path.isdir(os.path.join(realdom0.SM_TREES, tree)):
        return main_real_sm(tree)
    print("sandbox: no real sm tree at %s: running on the project's sm stand-in instead"
          % os.path.join(realdom0.SM_TREES, tree), flush=True)
    return main_standin()


def main_real_sm(tree):
    """The VM tier's full lifecycle on one real sm tree, dom0's LVM config as shipped."""
    import realdom0
    import realsm_lifecycle
    from krbd_helpers import Ceph
    t0 = time.time()
    steps = realsm_lifecycle.Steps("sandbox-" + tree, RESULTS)
    rc = 1
    ceph = None
    try:
        with steps("start Ceph in the VM (1 mon, 1 mgr, 1 OSD, cephx)"):
            ceph = Ceph(cephlab.start(os.path.join(WORK, "ceph"), objectstore="memstore", timeout=900))
        realsm_lifecycle.run(tree, realdom0.SHIPPED, ceph, RESULTS, WORK, full=True, steps=steps)
        rc = 0
    except Exception:  # noqa: BLE001 - the failed step is in the table; the traceback is for the reader
        traceback.print_exc()
    finally:
        if ceph is not None:
            ceph.close()
        cephlab.stop(os.path.join(WORK, "ceph"))
    print("\n%-66s %-8s %8s" % ("step (real sm: %s, dom0 LVM config as shipped)" % tree, "result", "seconds"))
    print("-" * 86)
    for row in steps.rows:
        print("%-66s %-8s %8.1f" % (row["step"][:66], "ok" if row["result"] == "ok" else "FAILED", row["seconds"]))
    ok = sum(1 for r in steps.rows if r["result"] == "ok")
    print("-" * 86)
    print("sandbox: real sm %s; %d steps, %d ok, %d failed, 0 not run; %.0f s in the VM"
          % (tree, len(steps.rows), ok, len(steps.rows) - ok, time.time() - t0))
    with open(os.path.join(RESULTS, "sandbox-summary.json"), "w") as f:
        json.dump({"sm": tree, "lvm": "as shipped (CA-410086)", "steps": steps.rows}, f, indent=1)
    return rc if ok == len(steps.rows) else 1


def main_standin():
    """The project's sm stand-in (no ../shared here): SR lifecycle and VDI I/O on it."""
    steps = Steps()
    state = {}

    def start_ceph():
        d = os.path.join(WORK, "ceph")
        state["ceph"] = cephlab.start(d, objectstore="memstore", timeout=900)
        c = state["ceph"]
        return "mon %s, fsid %s, pool %s" % (c["mon_addr"], c["fsid"], c["pool"])

    def cephx_user():
        import rados
        c = state["ceph"]
        r = rados.Rados(conffile=c["conf"], conf={"keyring": c["admin_keyring"]}, rados_id="admin")
        r.connect(timeout=60)
        try:
            cmd = {"prefix": "auth get-or-create", "entity": "client." + CEPHX_ID,
                   "caps": ["mon", "profile rbd", "osd", "profile rbd pool=%s" % c["pool"]],
                   "format": "json"}
            rc, out, err = r.mon_command(json.dumps(cmd), b"", timeout=60)
            if rc != 0:
                raise RuntimeError("auth get-or-create: %s" % err)
            state["key"] = json.loads(out.decode())[0]["key"]
            # other images in the pool, so the wizard's LUN list has something to show
            io = r.open_ioctx(c["pool"])
            import rbd
            for name in ("vm-golden", "scratch"):
                rbd.RBD().create(io, name, 64 * MIB, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
            io.close()
        finally:
            r.shutdown()
        return "client.%s with mon 'profile rbd' osd 'profile rbd pool=%s' (least caps)" % (CEPHX_ID, c["pool"])

    def stand_in_dom0():
        from fakesm import mkpkg
        if os.path.exists(SM_DIR):
            shutil.rmtree(SM_DIR)
        mkpkg.build_flat(SM_DIR)
        what = "the project's sm stand-in (flat layout): no ../shared here"
        # dom0 has XenAPI, fairlock and bitarray in its site-packages; stand-ins take their place
        shutil.copy(os.path.join(h.XAPI_STUB, "XenAPI.py"), os.path.join(DIST, "XenAPI.py"))
        for name in ("fairlock.py", "bitarray.py"):
            shutil.copy(os.path.join(realsm.STUBS, name), os.path.join(DIST, name))
        os.makedirs("/etc/lvm/master", exist_ok=True)
        shutil.copy("/etc/lvm/lvm.conf", "/etc/lvm/master/lvm.conf")
        with open("/etc/xensource-inventory", "w") as f:
            f.write("PRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\nPLATFORM_VERSION='3.4.0'\n")
        state["sm_sums"] = tree_sums()
        return what

    def installer(*args):
        p = sh([sys.executable, os.path.join(REPO, "install_rbdsr.py")] + list(args) + ["--root", "/"],
               check=False)
        print(p.stdout)
        want = 1 if args[0] == "check" and state.get("disabled") else 0
        if p.returncode != want:
            raise RuntimeError("install_rbdsr.py %s exited %d (expected %d)" % (args[0], p.returncode, want))
        return "exit %d" % p.returncode

    def seed_xapi():
        d = state["dom0"] = Dom0(state["ceph"], False)
        d.key = state["key"]
        d.refs = h.XenAPI.seed(d.db, sr_uuid=d.sr_uuid, device_config={}, secrets=[d.key], extra_hosts=1)
        c = state["ceph"]
        d.dconf = {"target": c["mon_addr"], "port": "6789", "targetIQN": c["pool"], "SCSIid": IMAGE,
                   "chapuser": CEPHX_ID, "chappassword_secret": d.refs["secrets"][d.key], "timeout": "60"}
        db = h.XenAPI.load_db(d.db)
        for pbd in db["PBD"].values():
            pbd["device_config"] = dict(d.dconf)
        # this VM is the master's dom0: its inventory names the host and the control domain
        # (real sm looks both up), and XAPI holds the control domain's VM record
        master = d.refs["hosts"][0]
        dom0_uuid = h.new_uuid()
        db["VM"]["OpaqueRef:dom0"] = {"uuid": dom0_uuid, "resident_on": master,
                                      "is_control_domain": True, "name_label": "Control domain"}
        h.XenAPI.save_db(db, d.db)
        with open("/etc/xensource-inventory", "w") as f:
            f.write("PRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\nPLATFORM_VERSION='3.4.0'\n"
                    "INSTALLATION_UUID='%s'\nCONTROL_DOMAIN_UUID='%s'\nPRIMARY_DISK='/dev/vda'\n"
                    % (db["host"][master]["uuid"], dom0_uuid))
        return "pool of 2 hosts, SR %s, key stored as a XAPI secret" % d.sr_uuid

    def wizard(step):
        d = state["dom0"]
        c = state["ceph"]
        dc = {"target": c["mon_addr"], "port": "6789", "chapuser": CEPHX_ID, "chappassword": d.key}
        if step >= 2:
            dc["targetIQN"] = c["pool"]
        if step >= 3:
            dc["SCSIid"] = IMAGE
        r = d.probe(dc)
        if step == 1:
            assert r.fault_code == 96, r
            iqns = [n.firstChild.data for n in xml.dom.minidom.parseString(r.stderr.strip())
                    .getElementsByTagName("TargetIQN")]
            assert c["pool"] in iqns, iqns
            return "ConfigTargetIQNMissing + pools %s" % iqns
        if step == 2:
            assert r.fault_code == 107, r
            luns = [n.firstChild.data for n in xml.dom.minidom.parseString(r.stderr.strip())
                    .getElementsByTagName("SCSIid")]
            assert "vm-golden" in luns, luns
            return "ConfigSCSIid + images %s" % luns
        assert r.ok, r
        uuids = [n.firstChild.data.strip() for n in xml.dom.minidom.parseString(r.value)
                 .getElementsByTagName("UUID")]
        return "existing SRs on %s: %s" % (IMAGE, uuids or "none")

    def sr_create():
        state["dom0"].call("sr_create", args=[str(512 * MIB)])
        return "image %s created (layering), tagged, VG_XenStorage-%s" % (IMAGE, state["dom0"].sr_uuid[:8])

    def sr_attach(host):
        d = state["dom0"]
        d.call("sr_attach", host=host)
        return "physical size %s MiB" % (int(d.sr_record()["physical_size"]) // MIB)

    def vdi_write():
        d = state["dom0"]
        vdi = state["vdi"] = h.new_uuid()
        d.call("vdi_create", vdi=vdi, args=[str(64 * MIB), "disk", "", "", "false", "", "", "false"],
               extra={"vdi_type": "user"})
        lv = _attach_vdi(d, vdi)
        data = state["data"] = os.urandom(MIB)
        _pwrite(lv, 8 * MIB, data)
        d.call("vdi_detach", vdi=vdi)
        return "VDI %s: 1 MiB written at 8 MiB through %s" % (vdi[:8], lv)

    def reattach_sees_data():
        d = state["dom0"]
        d.call("sr_detach")
        d.call("sr_attach")
        lv = _attach_vdi(d, state["vdi"])
        got = _pread(lv, 8 * MIB, MIB)
        d.call("vdi_detach", vdi=state["vdi"])
        if got != state["data"]:
            raise RuntimeError("data read back after re-attach differs")
        return "detach, attach: the 1 MiB reads back identical"

    def grow():
        import rados
        import rbd
        c = state["ceph"]
        r = rados.Rados(conffile=c["conf"], conf={"keyring": c["admin_keyring"]}, rados_id="admin")
        r.connect(timeout=60)
        try:
            io = r.open_ioctx(c["pool"])
            with rbd.Image(io, IMAGE) as img:
                img.resize(1024 * MIB)
            io.close()
        finally:
            r.shutdown()
        d = state["dom0"]
        d.call("sr_scan")
        size = int(d.sr_record()["physical_size"])
        if size <= 900 * MIB:
            raise RuntimeError("SR did not grow: %d" % size)
        return "image 512 -> 1024 MiB; sr_scan: physical size %d MiB" % (size // MIB)

    def detach_delete():
        d = state["dom0"]
        if "vdi" in state:
            d.call("vdi_delete", vdi=state["vdi"])
        d.call("sr_detach", host=1)
        d.call("sr_detach")
        d.call("sr_delete")
        return "SR deleted; image %s kept (delete_image not set)" % IMAGE

    def disable():
        installer("disable")
        state["disabled"] = True
        changed = [p for p, h_ in tree_sums().items() if state["sm_sums"].get(p) != h_]
        changed += [p for p in state["sm_sums"] if not os.path.exists(p)]
        if changed:
            raise RuntimeError("sm files differ from before enable: %s" % changed)
        return "every sm file byte-identical to before enable (%d files)" % len(state["sm_sums"])

    steps.run("start Ceph in the VM (1 mon, 1 mgr, 1 OSD, cephx)", start_ceph)
    steps.run("cephx user for the pool + sample images", cephx_user)
    steps.run("stand-in dom0 (sm at /opt/xensource/sm)", stand_in_dom0)
    steps.run("install_rbdsr.py enable", installer, "enable")
    steps.run("install_rbdsr.py check", installer, "check")
    steps.run("XAPI records (2 hosts, secret)", seed_xapi)
    steps.run("wizard 1: target + credentials -> pools", wizard, 1)
    steps.run("wizard 2: + pool -> images as LUNs", wizard, 2)
    steps.run("wizard 3: + image -> existing SRs", wizard, 3)
    steps.run("sr_create (first click works)", sr_create)
    steps.run("sr_attach on the master", sr_attach, 0)
    steps.run("vdi_create + write through the LV", vdi_write)
    # one kernel here: the second host's map finds the master's device (idempotent map)
    steps.run("sr_attach on a 2nd host (same kernel)", sr_attach, 1)
    steps.run("detach, re-attach: the data is there", reattach_sees_data)
    steps.run("grow the image, SR grows", grow)
    steps.run("install_rbdsr.py check (after use)", installer, "check")
    steps.run("vdi_delete, sr_detach, sr_delete", detach_delete)
    steps.run("install_rbdsr.py disable", disable)
    steps.run("install_rbdsr.py check (disabled: exit 1)", installer, "check")
    cephlab.stop(os.path.join(WORK, "ceph"))
    return steps.summary()


def tree_sums():
    """sha256 of every file of the installed sm (what enable patches, disable restores)."""
    import hashlib
    sums = {}
    for top in (SM_DIR, os.path.join(SITE, "sm")):
        for dirpath, _, files in os.walk(top):
            for name in files:
                p = os.path.join(dirpath, name)
                if "__pycache__" in p:
                    continue
                with open(p, "rb") as f:
                    sums[p] = hashlib.sha256(f.read()).hexdigest()
    return sums


def _attach_vdi(d, vdi):
    r = d.call("vdi_attach", vdi=vdi, args=["true"])
    value = r.value if isinstance(r.value, dict) else xmlrpc.client.loads(r.value)[0][0]
    return value["params"]


def _pwrite(path, offset, data):
    fd = os.open(path, os.O_WRONLY | os.O_SYNC)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _pread(path, offset, length):
    # drop the page cache first, so the read comes from the device, i.e. from Ceph
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
