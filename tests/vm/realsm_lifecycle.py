"""The whole SR and VDI lifecycle through REAL sm on a real kernel (VM lab), per sm tree of
../shared/sm, as one function that the VM tier (test_realsm_lifecycle.py) and the sandbox
(tools/sandbox_guest.py) both run: the guest is laid out as that dom0 (tests/vm/realdom0.py), RBDSR is hooked in
with `install_rbdsr.py enable --root /`, and every step runs sm's LVMoISCSISR script with
the XML-RPC call in argv[1], as XAPI does.

install; wizard steps 1-3 (sr_probe); sr_create; sr_attach on the master and a second host;
vdi_create (VHD) + data; vdi_snapshot; vdi_clone; vdi_resize; vdi_attach/vdi_detach;
vdi_delete; sm's GC (cleanup.py, started by sm through `systemctl start SMGC@<sr>`, run to
its end by the systemctl stand-in); the leaf coalesce after the snapshot is deleted, the
data written before the snapshot still there; image grow -> sr_scan/sr_update grow the SR;
HA vdi_generate_config -> vdi_attach_from_config without a XAPI session; sr_detach on both
hosts, sr_delete, disable and the sm tree byte-identical. Every VHD passes `vhd-util check`.

Not run, because this VM cannot: vdi_activate/vdi_deactivate (tapdisk needs XenServer's
blktap kernel driver; with sm's ATOMIC_PAUSE, vdi_attach/vdi_detach do not touch the LV).
The test therefore plays tapdisk's part for the data: it activates the VDI's LVs itself,
allocates every block with `vhd-util fill -b`, writes the data in place and reads it back through
the VHD chain with tests/vm/vhdio.py (qemu-io, format vpc, agrees where the VHD has no parent;
its own writes would clobber the batmap XenServer's VHDs keep after the BAT).
"""
import contextlib
import copy
import os
import re
import shutil
import subprocess
import sys
import time
import xml.dom.minidom
import xmlrpc.client

import realdom0
from krbd_helpers import MIB, unmap_all
from realdom0 import Dom0, Pool, dump_json
from vhdio import VHD

REPO = realdom0.REPO
IMAGE = "realsm-sr"
SR_SIZE = 512 * MIB
VDI_SIZE = 64 * MIB
# where the data goes: (offset in the virtual disk, the byte repeated there)
PATTERN = ((0, 0x5A), (20 * MIB, 0xA7), (VDI_SIZE - MIB, 0x3C))
GC_TIMEOUT = 900


class Steps(object):
    """Names each step, times it, keeps a table for the results share."""

    def __init__(self, tree_id, results):
        self.tree_id = tree_id
        self.path = os.path.join(results, "realsm-steps-%s.json" % tree_id)
        self.rows = []

    def __call__(self, name):
        steps = self

        class _Step(object):
            def __enter__(self):
                self.t = time.monotonic()
                print("\n[%s] >>> %s" % (steps.tree_id, name), flush=True)

            def __exit__(self, et, ev, tb):
                dt = time.monotonic() - self.t
                status = "ok" if et is None else "FAILED: %s" % (ev,)
                steps.rows.append({"step": name, "seconds": round(dt, 1), "result": status[:500]})
                dump_json(steps.path, steps.rows)
                print("[%s] <<< %s %.1f s" % (steps.tree_id, "ok" if et is None else "FAILED", dt), flush=True)
                return False
        return _Step()


def sh(argv, timeout=300, check=True, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s: rc %d\n%s\n%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def installer(*args):
    return sh([sys.executable, os.path.join(REPO, "install_rbdsr.py")] + list(args) + ["--root", "/"],
              check=False)


def lvs(vg):
    out = sh(["lvs", "--noheadings", "-o", "lv_name,lv_size,lv_attr", "--units", "b", "--nosuffix", vg]).stdout
    return dict((f[0], (int(f[1]), f[2])) for f in (line.split() for line in out.splitlines()) if f)


class ActiveLVs(object):
    """The test in tapdisk's place: the VDI LVs active for the duration of a with block."""

    def __init__(self, vg, names=None):
        self.vg = vg
        self.names = names

    def __enter__(self):
        have = lvs(self.vg)
        self.done = [n for n in self.names or [n for n in have if n.startswith("VHD-")] if have[n][1][4] != "a"]
        if self.done:
            sh(["lvchange", "-ay"] + ["%s/%s" % (self.vg, n) for n in self.done])
        return self

    def __exit__(self, *exc):
        if self.done:
            sh(["lvchange", "-an"] + ["%s/%s" % (self.vg, n) for n in self.done], check=False)
        return False


def vhd_check_all(vg):
    """`vhd-util check` on every VHD LV of the SR; returns {lv: 'valid'}."""
    out = {}
    with ActiveLVs(vg):
        for name in sorted(n for n in lvs(vg) if n.startswith("VHD-")):
            p = sh(["vhd-util", "check", "-n", "/dev/%s/%s" % (vg, name)], check=False)
            assert p.returncode == 0 and "is valid" in p.stdout, "vhd-util check %s: %s %s" % (name, p.stdout, p.stderr)
            out[name] = "valid"
    return out


def vhd_tree(vg):
    """{vdi uuid: parent uuid or None, hidden} from vhd-util scan, sm's own view of the chains."""
    with ActiveLVs(vg):
        p = sh(["vhd-util", "scan", "-f", "-m", "VHD-*", "-l", vg])
    tree = {}
    for line in p.stdout.splitlines():
        m = re.search(r"vhd=(\S+).*?hidden=(\d).*?parent=(\S+)", line)
        if m:
            uuid = m.group(1).replace("VHD-", "")
            parent = None if m.group(3) == "none" else m.group(3).replace("VHD-", "")
            tree[uuid] = (parent, m.group(2) == "1")
    return tree


def write_data(vg, vdi, size, pattern=PATTERN):
    """tapdisk's part: allocate every block of the VDI's VHD (`vhd-util fill -b`: every
    block of the virtual size, bitmaps all present; without -b, fill walks the whole max
    BAT, past the virtual size, and ends in ERANGE), then write 1 MiB of each (offset, byte)
    of pattern in place."""
    path = "/dev/%s/VHD-%s" % (vg, vdi)
    with ActiveLVs(vg, ["VHD-" + vdi]):
        sh(["vhd-util", "fill", "-n", path, "-b", "-f", "0", "-t", str(size // 512 - 1)])
        overwrite_data(vg, vdi, pattern)


def overwrite_data(vg, vdi, pattern):
    """Write 1 MiB of each (offset, byte) in place (the blocks are allocated already)."""
    with ActiveLVs(vg):  # every VHD LV: a differencing VHD opens its parents too
        v = VHD("/dev/%s/VHD-%s" % (vg, vdi))
        for off, byte in pattern:
            v.write(off, bytes([byte]) * MIB)


def expect_pattern(vg, vdi, also_qemu=False, pattern=PATTERN, unwritten=8 * MIB):
    """The data of pattern (64 KiB at each offset) read back through the VHD chain, and
    zeros at `unwritten` (None: not checked); returns the chain."""
    path = "/dev/%s/VHD-%s" % (vg, vdi)
    with ActiveLVs(vg):
        v = VHD(path)
        try:
            for off, byte in pattern:
                got = v.read(off, 64 * 1024)
                assert got == bytes([byte]) * 64 * 1024, "VDI %s: 0x%02x at %d not found through chain %s (found" \
                    " 0x%02x...)" % (vdi, byte, off, v.chain(), got[0])
            if unwritten is not None:
                assert v.read(unwritten, 4096) == bytes(4096)  # never written
            chain = v.chain()
        finally:
            v.close()
        if also_qemu:  # a plain dynamic VHD again: qemu's own reader agrees
            for off, byte in pattern:
                out = sh(["qemu-io", "-f", "vpc", "-r", "-c", "read -P 0x%x %d 64k" % (byte, off), path]).stdout
                assert "read 65536/65536 bytes" in out and "verification failed" not in out, out
    return chain


def run(tree_id, lvm, ceph, results, workdir, full=True, steps=None):
    """The lifecycle on one (sm tree, LVM config) in this guest, everything put back
    afterwards. Returns the Steps table."""
    name = "%s-lvm-%s" % (tree_id, lvm or "shipped")
    steps = steps or Steps(name, results)
    image = "%s-%s" % (IMAGE, name.replace(".", "-"))
    with stand_in_dom0(tree_id, results, workdir, name) as dom0:
        lifecycle(steps, dom0, lvm, ceph, image, ceph.key.reveal(), full=full)
    return steps


@contextlib.contextmanager
def stand_in_dom0(tree_id, results, workdir, name):
    """A Dom0 of the sm tree (not installed yet), and afterwards everything put back."""
    dom0 = Dom0(tree_id, os.path.join(workdir, "dom0-" + name), results, name=name)
    if os.path.exists(dom0.smlog):
        os.unlink(dom0.smlog)
    try:
        yield dom0
    finally:
        # after a failed step the SR may still be attached (the uninstaller refuses then):
        # deactivate and unmap first; then everything RBDSR installed goes (disable alone
        # keeps its files and state, which the next lifecycle's enable would reuse)
        sh(["vgchange", "-an", "--select", "vg_name=~^VG_XenStorage-"], check=False)
        unmap_all()
        p = sh([sys.executable, os.path.join(REPO, "uninstall_rbdsr.py"), "--root", "/", "--force"], check=False)
        print("uninstall_rbdsr.py: rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
        for unit_log in _gc_logs():
            shutil.copy(unit_log, os.path.join(results, "%s-%s" % (name, os.path.basename(unit_log))))
            os.unlink(unit_log)
        dom0.remove()
        unmap_all()


def _gc_logs():
    d = "/run/systemctl-standin"
    return [os.path.join(d, n) for n in os.listdir(d) if n.endswith(".log")] if os.path.isdir(d) else []


def install(steps, dom0, lvm):
    """The stand-in dom0 laid out, RBDSR installed and hooked in (two steps)."""
    with steps("stand-in dom0 from the real tree, LVM config %s" % (lvm or "as shipped")):
        dom0.install(lvm)

    with steps("install_rbdsr.py enable, check"):
        p = installer("enable")
        assert p.returncode == 0, p.stdout + p.stderr
        p = installer("check")
        assert p.returncode == 0, p.stdout + p.stderr


def rbd_pool(dom0, ceph, image, key, hosts):
    """XAPI's records of a pool with `hosts` hosts and one RBD SR on `image`, its PBDs'
    device-config naming the key by a XAPI secret, as the wizard leaves them."""
    pool = Pool(dom0, {}, secrets=[key], hosts=hosts)
    pool.set_dconf({"target": ceph.mon_addr, "port": "6789", "targetIQN": ceph.pool, "SCSIid": image,
                    "chapuser": "admin", "chappassword_secret": pool.refs["secrets"][key], "timeout": "60"})
    return pool


def lifecycle(steps, dom0, lvm, ceph, image, key, full=True):
    """Every step on one stand-in dom0. full=False is the shorter path for the other sm
    shapes when time is short: install, wizard, sr_create/attach, vdi_create, snapshot,
    attach/detach, delete, the GC, sr_detach/delete, disable -- no second host, data,
    clone, resize, coalesce, grow or HA."""
    install(steps, dom0, lvm)
    pool = rbd_pool(dom0, ceph, image, key, hosts=2)
    vg = "VG_XenStorage-" + pool.sr_uuid
    wizard = {"target": ceph.mon_addr, "port": "6789", "chapuser": "admin", "chappassword": key}

    with steps("wizard 1: monitors + credentials -> pools"):
        r = pool.probe(wizard)
        assert r.fault_code == 96, r  # ConfigTargetIQNMissing, with the pools as IQNs
        iqns = [n.firstChild.data for n in xml.dom.minidom.parseString(r.stderr.strip()).getElementsByTagName("TargetIQN")]
        assert ceph.pool in iqns

    with steps("wizard 2: + pool -> images as LUNs"):
        if "realsm-other" not in _images(ceph):
            ceph.create("realsm-other", 64 * MIB)
        r = pool.probe(dict(wizard, targetIQN=ceph.pool))
        assert r.fault_code == 107, r  # ConfigSCSIid, with the images as LUNs
        luns = [n.firstChild.data for n in xml.dom.minidom.parseString(r.stderr.strip()).getElementsByTagName("SCSIid")]
        assert "realsm-other" in luns

    with steps("wizard 3: + image -> no SR on it yet"):
        r = pool.probe(dict(wizard, targetIQN=ceph.pool, SCSIid=image))
        assert r.ok, r
        assert not xml.dom.minidom.parseString(r.value).getElementsByTagName("UUID")

    with steps("sr_create"):
        pool.call("sr_create", args=[str(SR_SIZE)])

    with steps("sr_attach on the master"):
        pool.call("sr_attach")
        pool.plug(0, True)
        assert "MGT" in lvs(vg)
        assert int(pool.sr()["physical_size"]) > SR_SIZE // 2

    if full:
        with steps("sr_attach on a second host (same kernel)"):
            pool.call("sr_attach", host=1)
            pool.plug(1, True)

    with steps("vdi_create (VHD)"):
        vdi = pool.vdi_create(VDI_SIZE)
        rec = pool.vdi(vdi)
        assert rec["sm_config"].get("vdi_type") == "vhd", rec
        assert int(rec["virtual_size"]) == VDI_SIZE

    if full:
        with steps("write data into the VDI (vhd-util fill, then in place)"):
            write_data(vg, vdi, VDI_SIZE)
            expect_pattern(vg, vdi, also_qemu=True)
            vhd_check_all(vg)

    with steps("vdi_attach / vdi_detach"):
        att = pool.vdi_attach(vdi)
        # sm 3.x answers the backend link in params; sm master (4.x) only params_nbd
        if "params" in att:
            assert att["params"] == "/dev/sm/backend/%s/%s" % (pool.sr_uuid, vdi), att
        else:
            assert att["params_nbd"].endswith("/%s/%s:exportname=%s" % (pool.sr_uuid, vdi, vdi)), att
        pool.call("vdi_detach", vdi=vdi)

    with steps("vdi_snapshot"):
        snap = pool.vdi_snapshot(vdi)
        tree = vhd_tree(vg)
        base = tree[vdi][0]
        assert base and tree[snap][0] == base and tree[base][1], tree  # both leaves of a hidden base
        if full:
            expect_pattern(vg, vdi)
            expect_pattern(vg, snap)
        vhd_check_all(vg)

    if full:
        with steps("vdi_clone"):
            clone = pool.vdi_snapshot(vdi, clone=True)
            expect_pattern(vg, clone)
            assert not pool.vdi(clone)["is_a_snapshot"]
            vhd_check_all(vg)

    if full:
        with steps("vdi_resize (the clone, 64 -> 96 MiB)"):
            pool.call("vdi_resize", vdi=clone, args=[str(96 * MIB)])
            assert int(pool.vdi(clone)["virtual_size"]) == 96 * MIB
            vhd_check_all(vg)

    with steps("vdi_delete (snapshot and clone)" if full else "vdi_delete (snapshot)"):
        starts = int(pool.gc_state().get("Starts") or 0)
        pool.call("vdi_delete", vdi=snap)
        assert pool.vdi(snap) is None
        if full:
            pool.call("vdi_delete", vdi=clone)
            assert pool.vdi(clone) is None

    if full:
        with steps("sr_scan: sm's GC runs to its end, leaf coalesce"):
            pool.call("sr_scan")
            st = pool.wait_gc(starts, GC_TIMEOUT)
            assert st["Result"] == "success" and st["ExecMainStatus"] == "0", st
            # the GC may have been kicked again by the scan: let every run end
            _gc_settle(pool, vg, vdi)
            tree = vhd_tree(vg)
            assert tree.get(vdi, ("?",))[0] is None, "VDI %s still has a parent after the GC: %s" % (vdi, tree)
            assert [u for u in tree if u != vdi] == [], tree
            expect_pattern(vg, vdi, also_qemu=True)
            vhd_check_all(vg)

    if full:
        with steps("grow the image -> sr_scan and sr_update grow the SR"):
            before = int(pool.sr()["physical_size"])
            ceph.resize(image, 2 * SR_SIZE)
            pool.call("sr_scan")
            pool.call("sr_update")
            after = int(pool.sr()["physical_size"])
            assert after > before + SR_SIZE // 2, (before, after)

    if full:
        with steps("HA: vdi_generate_config -> vdi_attach_from_config (no session)"):
            r = pool.call("vdi_generate_config", vdi=vdi)
            (config,), method = xmlrpc.client.loads(r.value)
            assert method == "vdi_attach_from_config"
            assert "session_ref" not in config and "sr_ref" not in config
            r = dom0.run(xmlrpc.client.dumps((config,), "vdi_attach_from_config"))
            assert r.ok, r
            assert key not in r.smlog
            expect_pattern(vg, vdi)
            pool.call("vdi_detach", vdi=vdi)

    with steps("vdi_delete + GC"):
        starts = int(pool.gc_state().get("Starts") or 0)
        pool.call("vdi_delete", vdi=vdi)
        pool.call("sr_scan")
        st = pool.wait_gc(starts, GC_TIMEOUT)
        assert st["Result"] == "success", st
        assert not [n for n in lvs(vg) if n.startswith("VHD-")]

    with steps("sr_detach on the second host, then the master" if full else "sr_detach"):
        if full:
            pool.call("sr_detach", host=1)
            pool.plug(1, False)
        pool.call("sr_detach")
        pool.plug(0, False)

    with steps("sr_delete"):
        pool.call("sr_delete")
        assert image in _images(ceph)  # kept, blank (delete_image not set)
        assert ceph.read(image, 0, MIB) == bytes(MIB)

    with steps("disable: the sm tree byte-identical"):
        p = installer("disable")
        assert p.returncode == 0, p.stdout + p.stderr
        after = realdom0.tree_sums([realdom0.SM_DIR, os.path.join(realdom0.SITE, "sm")])
        changed = sorted(k for k in set(after) | set(dom0.sm_sums) if after.get(k) != dom0.sm_sums.get(k))
        assert not changed, changed
        ceph.remove(image)


def _gc_settle(pool, vg, vdi, timeout=GC_TIMEOUT):
    """sm kicks its GC on every scan and delete; wait until no run is active and no more
    work shows in the VHD tree (the GC loops until it finds none, then exits)."""
    deadline = time.monotonic() + timeout
    while pool.gc_state()["ActiveState"] == "activating":
        assert time.monotonic() < deadline, "GC still running"
        time.sleep(1)


def _images(ceph):
    import rbd
    return rbd.RBD().list(ceph.ioctx())


def sr_view(pool, sr_uuid):
    """The same pool (XAPI stand-in, hosts, dom0) speaking for another of its SRs, e.g.
    one XAPI's SR.introduce + PBD.create made: its calls go to sm with that SR's uuid,
    ref and the master's PBD's device-config."""
    db = pool.db()
    (ref,) = [r for r, rec in db["SR"].items() if rec["uuid"] == sr_uuid]
    view = copy.copy(pool)
    view.sr_uuid = sr_uuid
    view.refs = dict(pool.refs, sr=ref, pbds=[p for p, rec in db["PBD"].items() if rec["SR"] == ref])
    view.dconf = next(dict(rec["device_config"]) for rec in db["PBD"].values()
                      if rec["SR"] == ref and rec["host"] == pool.refs["hosts"][0])
    return view
