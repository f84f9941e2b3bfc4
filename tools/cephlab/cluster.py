"""Start, inspect, restart and stop a throwaway Ceph cluster living entirely in
one directory: one mon (a), one mgr (x), one OSD (0), cephx on, 127.0.0.1 only.

Post-bootstrap work goes through librados in this one process (no `ceph` CLI
runs): in the TCG VM guest every process start costs seconds.
"""
import json
import os
import signal
import shutil
import subprocess
import sys
import time
import uuid

from . import fsprobe, keys, ports, procs

STATE_FILE = "cluster.json"
POOL = "rbd"
PG_NUM = 8
MON_ID, MGR_ID, OSD_ID = "a", "x", 0
OBJECTSTORES = ("memstore", "bluestore")
GIB = 1 << 30

_CAPS = {
    "client.admin": {"mon": "allow *", "osd": "allow *", "mgr": "allow *", "mds": "allow *"},
    "mgr.%s" % MGR_ID: {"mon": "allow profile mgr", "osd": "allow *", "mds": "allow *"},
    "osd.%d" % OSD_ID: {"mon": "allow profile osd", "mgr": "allow profile osd", "osd": "allow *"},
}

MGR_MODULE_PATH = "/usr/share/ceph/mgr"
MGR_MODULES = ("standard", "none")
# "standard": the mgr python modules a block cluster uses (always-on ones must
# stay, or health is ERR). "none": no python module at all, for the TCG guest,
# where importing each one takes a minute; pool stats, `ceph df` and quotas are
# core mgr code and still work, the missing always-on modules' MGR_MODULE_ERROR
# is muted.
_MGR_MODULES_OFF = (
    "alerts", "diskprediction_local", "influx", "insights", "localpool", "mirroring", "nfs",
    "osd_perf_query", "osd_support", "prometheus", "restful", "selftest", "snap_schedule", "stats",
    "telegraf", "test_orchestrator", "zabbix",
)


class ClusterError(Exception):
    """A start/stop/restart step failed; the message says which and where the logs are."""


class Layout(object):
    """Every path of a cluster, all under one directory."""

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        j = lambda *p: os.path.join(self.dir, *p)  # noqa: E731
        self.conf = j("ceph.conf")
        self.admin_keyring = j("ceph.client.admin.keyring")
        self.state = j(STATE_FILE)
        self.run = j("run")
        self.log = j("log")
        self.mon_data = j("mon.%s" % MON_ID)
        self.mgr_data = j("mgr.%s" % MGR_ID)
        self.osd_data = j("osd.%d" % OSD_ID)
        self.bootstrap_keyring = j("bootstrap.keyring")

    def pid_file(self, name):
        return os.path.join(self.run, "%s.pid" % name)

    def log_file(self, name):
        return os.path.join(self.log, "%s.log" % name)


def _conf_text(lay, fsid, v1_port, v2_port, objectstore, osd_bytes, mgr_modules):
    d = lay.dir
    if mgr_modules == "none":
        mgr_off = ",".join(sorted(os.listdir(MGR_MODULE_PATH)))
        mgr_on = ""
    else:
        mgr_off = ",".join(_MGR_MODULES_OFF)
        mgr_on = "iostat"
    return """\
# throwaway dev cluster made by tools/ceph-dev-cluster
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]
mon initial members = {mon_id}
public addr = 127.0.0.1
# the OSD binds its cluster and heartbeat messengers on 0.0.0.0 without this
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {d}/$cluster.$name.keyring
run dir = {d}/run
admin socket = {d}/run/$name.asok
pid file = {d}/run/$name.pid
log file = {d}/log/$name.log
mon cluster log file = {d}/log/$cluster.$channel.log
crash dir = {d}/crash
log to syslog = false
err to syslog = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = {pgs}
osd pool default pgp num = {pgs}
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.1
mgr stats period = 1
mon mgr digest period = 1

[mon]
mon data = {d}/mon.$id
keyring = $mon_data/keyring

[mon.{mon_id}]
public addrv = [v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]

[mgr]
mgr data = {d}/mgr.$id
keyring = $mgr_data/keyring
# the mgr imports every module it finds before it activates (~6 s); load only
# what a block-storage cluster uses (always-on ones must stay or health is ERR)
mgr disabled modules = {mgr_off}
mgr initial modules = {mgr_on}

[osd]
osd data = {d}/osd.$id
keyring = $osd_data/keyring
osd objectstore = {store}
# memstore keeps data over SIGTERM only when the OSD shuts down slowly
osd fast shutdown = false
memstore device bytes = {bytes}
# outside osd data: bluestore puts a `block` symlink there
bluestore block path = {d}/osd.$id.block
bluestore block create = true
bluestore block size = {bytes}
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 1073741824
""".format(fsid=fsid, v1=v1_port, v2=v2_port, d=d, pgs=PG_NUM, store=objectstore, bytes=osd_bytes,
        mgr_off=mgr_off, mgr_on=mgr_on, mon_id=MON_ID)


_T0 = time.monotonic()


def _trace(step):
    """CEPHLAB_TRACE=1 prints how long each start-up step took (for tuning
    the VM guest, where each one is 10-40x slower)."""
    if os.environ.get("CEPHLAB_TRACE"):
        sys.stderr.write("cephlab %7.2fs %s\n" % (time.monotonic() - _T0, step))


def _spawn(lay, argv, tag):
    """Start a Ceph program; its own stdout/stderr go to log/<tag>.out (files,
    not pipes: a daemonised child keeping a pipe open would block a reader)."""
    out = open(os.path.join(lay.log, "%s.out" % tag), "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                close_fds=True)
    finally:
        out.close()


def _finish(lay, proc, tag, deadline):
    """Wait for a spawned program (or a daemon's foreground parent) to exit 0."""
    try:
        rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise ClusterError("%s did not finish in time (see %s)" % (tag, lay.log))
    if rc != 0:
        raise ClusterError("%s failed with exit code %d: %s" % (tag, rc, _tail(lay, tag)))


def _tail(lay, tag, lines=15):
    for path in (os.path.join(lay.log, "%s.out" % tag), lay.log_file(tag.split(" ")[0])):
        try:
            with open(path, errors="replace") as f:
                text = [t for t in f.read().splitlines() if t.strip()][-lines:]
        except OSError:
            continue
        if text:
            return "\n".join(text)
    return "(no output; see %s)" % lay.log


def _daemon_argv(lay, binary, ident):
    return [binary, "-c", lay.conf, "-i", str(ident)]


def _connect(lay, deadline, name="client.admin"):
    import rados
    budget = max(1, int(deadline - time.monotonic()))
    cl = rados.Rados(conffile=lay.conf, name=name,
                     conf={"rados_mon_op_timeout": str(min(budget, 30)),
                           "rados_osd_op_timeout": str(min(budget, 60)),
                           "client_mount_timeout": str(min(budget, 30))})
    try:
        cl.connect(timeout=min(budget, 30))
    except rados.Error as e:
        cl.shutdown()
        raise ClusterError("cannot connect to the cluster in %s as %s: %s" % (lay.dir, name, e))
    return cl


def mon_command(cl, timeout=30, **cmd):
    """Run one mon command as JSON; return the parsed JSON output (or None)."""
    import rados
    cmd.setdefault("format", "json")
    try:
        ret, out, err = cl.mon_command(json.dumps(cmd), b"", timeout=timeout)
    except rados.Error as e:
        raise ClusterError("mon command %r failed: %s" % (cmd["prefix"], e))
    if ret != 0:
        raise ClusterError("mon command %r failed (%d): %s" % (cmd["prefix"], ret, err))
    return json.loads(out) if out.strip() else None


def _readiness(st):
    """(ready, what is missing) from a `status` JSON document."""
    missing = []
    osdmap = st.get("osdmap", {})
    osdmap = osdmap.get("osdmap", osdmap)  # older layouts nest it
    if osdmap.get("num_up_osds") != 1 or osdmap.get("num_in_osds") != 1:
        missing.append("osd up+in")
    if not st.get("mgrmap", {}).get("available"):
        missing.append("mgr available")
    pgmap = st.get("pgmap", {})
    states = pgmap.get("pgs_by_state", [])
    clean = sum(s["count"] for s in states if s["state_name"] == "active+clean")
    if pgmap.get("num_pgs", 0) < PG_NUM or clean != pgmap.get("num_pgs"):
        missing.append("pgs active+clean (%s)" % (", ".join(
            "%d %s" % (s["count"], s["state_name"]) for s in states) or "none reported"))
    return not missing, missing


def _wait_ready(cl, deadline, extra=None, extra_what=""):
    """Poll `status` until _readiness (and extra(), when given) hold. Polls
    gently: in the TCG guest every command costs the mon real CPU."""
    missing = ["status"]
    while time.monotonic() < deadline:
        t = time.monotonic()
        st = mon_command(cl, timeout=max(1, min(30, int(deadline - t))), prefix="status")
        pause = max(0.2, 3 * (time.monotonic() - t))
        ready, missing = _readiness(st)
        if ready and extra is not None and not extra():
            ready, missing = False, [extra_what]
        if ready:
            return
        time.sleep(pause)
    raise ClusterError("cluster not ready in time; still waiting for: %s" % "; ".join(missing))


def _pids(lay):
    """pid of each of our daemons that is alive, by name (from the pid files,
    then any process started with our conf whose pid file is gone)."""
    found = {}
    if os.path.isdir(lay.run):
        for entry in os.listdir(lay.run):
            if entry.endswith(".pid"):
                pid = procs.read_pid(os.path.join(lay.run, entry))
                if pid and procs.is_ours(pid, lay.conf):
                    found[entry[:-4]] = pid
    known = set(found.values())
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in known and procs.is_ours(int(entry), lay.conf):
            found["pid-%s" % entry] = int(entry)
    return found


def load_state(directory):
    lay = Layout(directory)
    try:
        with open(lay.state) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return lay, None
    return lay, state if state.get("cephlab") == 1 else None


def start(directory, objectstore="memstore", mon_port=None, timeout=120.0, osd_size_gib=8,
          mgr_modules="standard"):
    """Bring a cluster up in directory (which must not exist or be empty).
    Returns the public description (no key in it)."""
    if objectstore not in OBJECTSTORES:
        raise ClusterError("objectstore must be one of %s" % ", ".join(OBJECTSTORES))
    if mgr_modules not in MGR_MODULES:
        raise ClusterError("mgr modules must be one of %s" % ", ".join(MGR_MODULES))
    t0 = time.monotonic()
    deadline = t0 + timeout
    lay = Layout(directory)
    if any(c.isspace() for c in lay.dir):
        raise ClusterError("cluster dir must not contain whitespace: %r" % lay.dir)
    if os.path.isdir(lay.dir) and os.listdir(lay.dir):
        raise ClusterError("%s exists and is not empty (stop the cluster there first)" % lay.dir)
    if mon_port is not None and not ports.is_free(mon_port):
        raise ClusterError("port %d on 127.0.0.1 is in use" % mon_port)
    if mon_port is None:
        v1_port, v2_port = ports.pick_free(2)
    else:
        v1_port, v2_port = mon_port, ports.pick_free(1, exclude=(mon_port,))[0]

    created = not os.path.exists(lay.dir)
    os.makedirs(lay.dir, mode=0o700, exist_ok=True)
    if objectstore == "bluestore" and not fsprobe.supports_odirect(lay.dir):
        if created:
            os.rmdir(lay.dir)
        raise ClusterError("bluestore needs O_DIRECT, which the filesystem of %s lacks (tmpfs before "
                           "Linux 6.6): use a directory on ext4/xfs, e.g. under /var/tmp" % lay.dir)
    for sub in (lay.run, lay.log, lay.mon_data, lay.mgr_data, lay.osd_data):
        os.mkdir(sub, 0o700)
    fsid = str(uuid.uuid4())
    osd_uuid = str(uuid.uuid4())
    state = {
        "cephlab": 1, "dir": lay.dir, "conf": lay.conf, "admin_keyring": lay.admin_keyring,
        "mon_addr": "127.0.0.1:%d" % v1_port, "mon_port": v1_port, "mon_v2_port": v2_port,
        "mon_host": "[v2:127.0.0.1:%d,v1:127.0.0.1:%d]" % (v2_port, v1_port),
        "fsid": fsid, "pool": POOL, "objectstore": objectstore, "osd_uuid": osd_uuid,
        "mgr_modules": mgr_modules,
    }
    with open(lay.state, "w") as f:
        json.dump(state, f, indent=1)
    with open(lay.conf, "w") as f:
        f.write(_conf_text(lay, fsid, v1_port, v2_port, objectstore, osd_size_gib * GIB, mgr_modules))

    entity_keys = {e: keys.new_key() for e in ("mon.", "client.admin", "mgr.%s" % MGR_ID, "osd.%d" % OSD_ID)}
    # the mon imports every entity (with caps) from this keyring at mkfs
    keys.write_private(lay.bootstrap_keyring, keys.keyring_text(
        [("mon.", entity_keys["mon."], {"mon": "allow *"})]
        + [(e, entity_keys[e], _CAPS[e]) for e in sorted(_CAPS)]))
    keys.write_private(lay.admin_keyring, keys.keyring_text(
        [("client.admin", entity_keys["client.admin"], _CAPS["client.admin"])]))
    keys.write_private(os.path.join(lay.mgr_data, "keyring"), keys.keyring_text(
        [("mgr.%s" % MGR_ID, entity_keys["mgr.%s" % MGR_ID], None)]))
    keys.write_private(os.path.join(lay.osd_data, "keyring"), keys.keyring_text(
        [("osd.%d" % OSD_ID, entity_keys["osd.%d" % OSD_ID], None)]))

    try:
        _bootstrap(lay, state, deadline)
    except BaseException as e:
        _kill_all(lay, grace=2)
        if isinstance(e, ClusterError):
            raise ClusterError("%s\n(logs kept in %s; run `stop --dir %s` to remove it)"
                               % (e, lay.log, lay.dir))
        raise
    state["startup_seconds"] = round(time.monotonic() - t0, 2)
    return state


def _bootstrap(lay, state, deadline):
    # The mgr spends seconds importing its python modules before it talks to
    # the mon; without the mon config lookup (all settings are in the file) it
    # does that while the mon is being made, then retries until the mon answers.
    mgr = _spawn(lay, _daemon_argv(lay, "ceph-mgr", MGR_ID) + ["--no-mon-config"], "mgr.%s" % MGR_ID)
    osd_mkfs = _spawn(lay, ["ceph-osd", "-c", lay.conf, "-i", str(OSD_ID), "--mkfs", "--no-mon-config",
                            "--osd-uuid", state["osd_uuid"]], "osd mkfs")
    # the mon builds its initial monmap from `mon host`, naming itself from
    # `mon initial members` + its `public addrv` (no monmaptool run)
    mon_mkfs = _spawn(lay, _daemon_argv(lay, "ceph-mon", MON_ID)
                      + ["--mkfs", "--keyring", lay.bootstrap_keyring], "mon mkfs")
    _finish(lay, mon_mkfs, "mon mkfs", deadline)
    _trace("mon mkfs done")
    os.unlink(lay.bootstrap_keyring)
    mon = _spawn(lay, _daemon_argv(lay, "ceph-mon", MON_ID), "mon.%s" % MON_ID)
    _finish(lay, mon, "mon.%s" % MON_ID, deadline)
    _trace("mon started")
    cl = _connect(lay, deadline)
    try:
        _trace("connected")
        mon_command(cl, prefix="osd new", uuid=state["osd_uuid"], id=OSD_ID)
        _finish(lay, osd_mkfs, "osd mkfs", deadline)
        _trace("osd registered and mkfs done")
        osd = _spawn(lay, _daemon_argv(lay, "ceph-osd", OSD_ID), "osd.%d" % OSD_ID)
        mon_command(cl, prefix="osd pool create", pool=POOL, pg_num=PG_NUM, pgp_num=PG_NUM)
        _trace("pool created")
        _finish(lay, mgr, "mgr.%s" % MGR_ID, deadline)
        _trace("mgr forked")
        _finish(lay, osd, "osd.%d" % OSD_ID, deadline)
        _trace("osd forked")
        _rbd_pool_init(cl)
        _trace("rbd pool init done")
        if state["mgr_modules"] == "none":
            mon_command(cl, prefix="health mute", code="MGR_MODULE_ERROR", sticky=True)
        _wait_ready(cl, deadline)
        _trace("ready")
    finally:
        cl.shutdown()


def _rbd_pool_init(cl):
    """What `rbd pool init` does (application tag + validation object); it
    writes to the pool, so it also proves the PGs serve I/O."""
    import rbd
    ioctx = cl.open_ioctx(POOL)
    try:
        rbd.RBD().pool_init(ioctx, False)
    finally:
        ioctx.close()


def _kill_all(lay, grace):
    # SIGKILL: the data is thrown away, and a SIGTERMed OSD waits 5 s for a
    # mon that is going away at the same time
    pids = list(_pids(lay).values())
    left = procs.terminate(pids, grace, polite=False)
    if left:
        raise ClusterError("processes %s did not exit" % left)
    return pids


def stop(directory, grace=5.0):
    """Kill the cluster's daemons (only processes started with its conf), wait
    for them to exit, remove the directory. Idempotent."""
    lay, state = load_state(directory)
    if not os.path.exists(lay.dir):
        return {"dir": lay.dir, "stopped": [], "removed": False}
    if state is None:
        raise ClusterError("%s is not a ceph-dev-cluster directory (no %s); not touching it"
                           % (lay.dir, STATE_FILE))
    pids = _kill_all(lay, grace)
    shutil.rmtree(lay.dir)
    return {"dir": lay.dir, "stopped": sorted(pids), "removed": True}


def status(directory, timeout=10.0):
    lay, state = load_state(directory)
    if state is None:
        return {"dir": lay.dir, "exists": os.path.isdir(lay.dir), "running": False, "daemons": {}}
    pids = _pids(lay)
    names = ["mon.%s" % MON_ID, "mgr.%s" % MGR_ID, "osd.%d" % OSD_ID]
    out = dict(state, exists=True, daemons={n: pids.get(n) for n in names},
               running=all(pids.get(n) for n in names))
    out.pop("cephlab", None)
    if pids.get("mon.%s" % MON_ID):
        try:
            cl = _connect(lay, time.monotonic() + timeout)
            try:
                st = mon_command(cl, timeout=int(timeout), prefix="status")
                out["health"] = st.get("health", {}).get("status")
                out["ready"], out["waiting_for"] = _readiness(st)
            finally:
                cl.shutdown()
        except Exception as e:  # status must report, not fail
            out["health"] = "unreachable: %s" % e
    return out


def _osd_info(cl):
    dump = mon_command(cl, prefix="osd dump")
    for o in dump.get("osds", []):
        if o.get("osd") == OSD_ID:
            return o
    raise ClusterError("osd.%d is not in the osd map" % OSD_ID)


def kill_osd(directory, timeout=30.0):
    """Freeze the OSD (SIGSTOP: it serves nothing from this instant), then
    SIGKILL it, as a crash would; wait until it is gone. bluestore only:
    memstore loses its data."""
    lay, state = load_state(directory)
    if state is None:
        raise ClusterError("no cluster in %s" % lay.dir)
    name = "osd.%d" % OSD_ID
    pid = procs.read_pid(lay.pid_file(name))
    if not pid or not procs.is_ours(pid, lay.conf):
        raise ClusterError("%s is not running" % name)
    os.kill(pid, signal.SIGSTOP)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while procs.is_ours(pid, lay.conf):
        if time.monotonic() > deadline:
            raise ClusterError("%s (pid %d) did not die" % (name, pid))
        time.sleep(0.05)
    return pid


def start_osd(directory, timeout=120.0):
    """Start the OSD again after kill_osd; wait until it is up and the PGs are clean."""
    lay, state = load_state(directory)
    if state is None:
        raise ClusterError("no cluster in %s" % lay.dir)
    t0 = time.monotonic()
    deadline = t0 + timeout
    name = "osd.%d" % OSD_ID
    osd = _spawn(lay, _daemon_argv(lay, "ceph-osd", OSD_ID), name)
    _finish(lay, osd, name, deadline)
    cl = _connect(lay, deadline)
    try:
        _wait_ready(cl, deadline, extra=lambda: _osd_info(cl).get("up") == 1, extra_what="%s to be up" % name)
    finally:
        cl.shutdown()
    return round(time.monotonic() - t0, 2)


def restart_osd(directory, timeout=120.0, grace=60.0):
    """Stop the OSD (SIGTERM: a clean shutdown, so memstore and bluestore keep
    their data), start it again, wait until it is up and the PGs are clean."""
    lay, state = load_state(directory)
    if state is None:
        raise ClusterError("no cluster in %s" % lay.dir)
    t0 = time.monotonic()
    deadline = t0 + timeout
    cl = _connect(lay, deadline)
    try:
        before = _osd_info(cl).get("up_from", 0)
        name = "osd.%d" % OSD_ID
        pid = procs.read_pid(lay.pid_file(name))
        if pid and procs.is_ours(pid, lay.conf):
            if procs.terminate([pid], grace):
                raise ClusterError("%s (pid %d) did not exit" % (name, pid))
        osd = _spawn(lay, _daemon_argv(lay, "ceph-osd", OSD_ID), name)
        _finish(lay, osd, name, deadline)

        def rebooted():
            info = _osd_info(cl)
            return info.get("up") == 1 and info.get("up_from", 0) > before
        _wait_ready(cl, deadline, extra=rebooted, extra_what="%s to come back up" % name)
    finally:
        cl.shutdown()
    return {"dir": lay.dir, "restart_seconds": round(time.monotonic() - t0, 2)}
