"""auth=ssh through the driver's real entry point in the VM (real kernel RBD
client, real LVM, real Ceph): a real sshd on 127.0.0.1 with the ceph CLI
behind sudo plays the monitor (tests/sshd.py), as the seed's credential model
has it -- chapuser / chappassword_secret are a sudoer's login on a monitor.

sr_create (creating the least-privilege cephx user), sr_attach on two hosts,
vdi_generate_config -> vdi_attach_from_config and sr_detach all work; the HA
config holds the fetched cephx key and nothing of the SSH login; the SSH
password appears in no process's argv (sampled from /proc during every call,
sshd's children included), in no SMlog line and in no file.

Parametrized over the sm trees of test_driver_lifecycle's `tree` fixture
(the sm stand-in in both layouts today; real sm trees can join that list).
"""
import os
import threading
import uuid
import xmlrpc.client

import pytest

import driverharness as h
from krbd_helpers import MIB, _get
from lvm_helpers.cmd import run as lvm
from rbdsr import krbd
from test_driver_lifecycle import lvm_dirs, tree  # noqa: F401  (fixtures; ceph is conftest's)
from tests.sshd import SSHD

# The stand-in XAPI databases (xapi.json of each harness tree) keep secrets the way
# XAPI does (that is their job): the only files allowed to hold the password.
XAPI_DB = "xapi.json"
SCAN_ROOTS = ("/run", "/var/log", "/etc", "/tmp", "/var/tmp", "/dev/shm")
MAX_SCAN = 8 << 20


@pytest.fixture(scope="module")
def sshd(ceph):  # noqa: F811
    server = SSHD(_get(ceph.cluster, "conf")).start()
    yield server
    server.stop()


class ArgvWatch(object):
    """Samples every process's argv from /proc until stopped; records hits of the needles."""

    def __init__(self, needles):
        self.needles = [n.encode() for n in needles]
        self.hits = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        me = str(os.getpid())
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        argv = f.read()
                except OSError:
                    continue
                if any(n in argv for n in self.needles):
                    self.hits.append((pid, argv[:200]))
            self.samples += 1
            self._stop.wait(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def files_holding(needle, roots):
    found = []
    data_needle = needle.encode()
    for root in roots:
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if not os.path.islink(os.path.join(d, x))]
            for name in names:
                path = os.path.join(d, name)
                if name == XAPI_DB or os.path.islink(path):
                    continue
                try:
                    st = os.stat(path)
                    if not os.path.isfile(path) or st.st_size > MAX_SCAN:
                        continue
                    with open(path, "rb") as f:
                        if data_needle in f.read():
                            found.append(path)
                except OSError:
                    continue
    return found


def test_ssh_mode_whole_path(tree, ceph, sshd):  # noqa: F811
    image = "h12-ssh-" + uuid.uuid4().hex[:6]
    cephx_id = "h12-ssh-" + uuid.uuid4().hex[:6]
    sr_uuid = h.new_uuid()
    refs = tree.seed(sr_uuid=sr_uuid, device_config={}, secrets=[sshd.password], extra_hosts=1)
    dconf = sshd.dconf(ceph, ceph.pool, SCSIid=image, cephx_id=cephx_id, create_cephx_user="true",
                       timeout="150")  # TCG: one ceph CLI call can take a minute
    del dconf["chappassword"]
    dconf["chappassword_secret"] = refs["secrets"][sshd.password]
    db = h.XenAPI.load_db(tree.db)
    for pbd in db["PBD"].values():
        pbd["device_config"] = dict(dconf)
    h.XenAPI.save_db(db, tree.db)
    iid = krbd.ImageId(ceph.fsid, ceph.pool, "", image)
    vg = "VG_XenStorage-" + sr_uuid

    def call(command, host=0, vdi=None, args=None, extra=None, config=None):
        if config is not None:
            c = config
        else:
            dc = dict(dconf, SRmaster="true") if host == 0 else dict(dconf)
            c = h.method_call(command, dc, sr_uuid=sr_uuid, sr_ref=refs["sr"], host_ref=refs["hosts"][host],
                              args=args, vdi_uuid=vdi, extra=extra)
        env = None if host == 0 else tree.slave_env
        with ArgvWatch([sshd.password]) as watch:
            r = tree.run(c, env=env, timeout=600)
        assert watch.samples > 0
        assert not watch.hits, "SSH password in a process's argv during %s: %r" % (command, watch.hits)
        assert "Traceback" not in r.stdout + r.stderr, r
        assert sshd.password not in r.smlog + r.stdout + r.stderr, "SSH password leaked by %s" % command
        assert r.ok, (command, r)
        return r

    try:
        call("sr_create", args=[str(256 * MIB)])
        assert not krbd.find_mapped(iid)
        entry = ceph.rados.mon_command('{"prefix": "auth get", "entity": "client.%s", "format": "json"}'
                                       % cephx_id, b"")
        import json
        user = json.loads(entry[1])[0]
        assert user["caps"] == {"mon": "profile rbd", "osd": "profile rbd pool=%s" % ceph.pool}
        cephx_key = user["key"]

        r = call("sr_attach")
        assert krbd.find_mapped(iid) is not None and lvm(["vgs", vg]).rc == 0
        assert "fetched over SSH" in r.smlog and cephx_key not in r.smlog
        call("sr_attach", host=1)  # a second host: its own SSH fetch, its own map (already mapped here)

        vdi = h.new_uuid()
        call("vdi_create", vdi=vdi, args=[str(16 * MIB), "ha", "", "", "false", "", "", "false"],
             extra={"vdi_type": "user"})
        r = call("vdi_generate_config", vdi=vdi)
        (config,), method = xmlrpc.client.loads(r.value)
        assert method == "vdi_attach_from_config"
        dc = config["device_config"]
        text = repr(config)
        assert sshd.password not in text and sshd.user not in text
        assert not [k for k in dc if k.startswith("ssh_") or k in ("chappassword_secret", "create_cephx_user")]
        assert dc["auth"] == "cephx" and dc["chapuser"] == cephx_id and dc["chappassword"] == cephx_key

        # HA start-up: no XAPI session, no SSH -- the least-privilege key alone maps the image
        call("sr_detach", host=0)
        assert krbd.find_mapped(iid) is None
        sshd_down = sshd.proc
        sshd_down.send_signal(19)  # SIGSTOP: the "monitor" SSH is unavailable during HA attach
        try:
            r = call("vdi_attach_from_config", config=xmlrpc.client.dumps((config,), "vdi_attach_from_config"))
        finally:
            sshd_down.send_signal(18)  # SIGCONT
        assert krbd.find_mapped(iid) is not None
        assert cephx_key not in r.smlog
        call("vdi_detach", vdi=vdi)
        call("sr_detach")
        assert krbd.find_mapped(iid) is None

        # the SR can come back and go away in SSH mode too
        call("sr_attach")
        call("vdi_delete", vdi=vdi)
        call("sr_detach")
        call("sr_delete")
        assert krbd.find_mapped(iid) is None
    finally:
        lvm(["vgchange", "-an", vg], check=False)
        krbd.unmap(iid, force=True, timeout=60)
        ceph.remove(image)

    assert os.path.basename(tree.db) == XAPI_DB
    leaked = files_holding(sshd.password, SCAN_ROOTS + (tree.workdir,))
    assert not leaked, "SSH password found in files: %s" % leaked
