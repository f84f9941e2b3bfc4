"""tools/ceph-dev-cluster itself: lifecycle, isolation of side-by-side
clusters, cephx enforcement, data kept over an OSD restart."""
import os
import socket
import stat
import time
import uuid

import pytest
import rados
import rbd

from tests.cephfixture import (CephCluster, create_client_key, remove_client, run_tool, start_cluster)

MiB = 1 << 20


def _procs_with(conf_path):
    """Live (non-zombie) processes whose command line names conf_path."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if conf_path.encode() in argv and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def _listen_addrs(pid):
    """Local addresses of the TCP sockets pid listens on, as (ip, port)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addrs = []
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] != "0A" or cols[9] not in inodes:  # 0A = LISTEN
                    continue
                hexip, hexport = cols[1].split(":")
                if family == 4:
                    ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(hexip)[::-1])
                else:
                    ip = "v6:" + hexip
                addrs.append((ip, int(hexport, 16)))
    return addrs


def _images(cluster):
    cl = cluster.rados_client()
    try:
        with cl.open_ioctx(cluster.pool) as io:
            return rbd.RBD().list(io)
    finally:
        cl.shutdown()


def test_start_status_stop_leaves_nothing(tmp_path):
    """Also covers the lean mgr of the VM guest: no python module, yet pool
    stats work and health is OK (the always-on modules' error muted)."""
    directory = tmp_path / "lifecycle"
    cluster = start_cluster(directory, mgr_modules="none")
    try:
        assert cluster.mgr_modules == "none"
        deadline = time.monotonic() + 30
        while True:  # stats reach the mon through the mgr every second
            df = cluster.mon_command(prefix="df")
            rbd_stats = [p for p in df["pools"] if p["name"] == cluster.pool][0]["stats"]
            if rbd_stats["objects"] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rbd_stats["max_avail"] > 0 and rbd_stats["objects"] >= 1, rbd_stats  # rbd_info
        assert cluster.mon_command(prefix="status")["health"]["status"] == "HEALTH_OK"
        st = run_tool("status", directory, 30)
        assert st["running"] is True and st["ready"] is True, st
        pids = sorted(st["daemons"].values())
        assert len(pids) == 3 and all(pids)
        assert sorted(_procs_with(cluster.conf_path)) == pids
        # every listening socket is on 127.0.0.1
        for pid in pids:
            addrs = _listen_addrs(pid)
            assert addrs, "daemon %d listens nowhere" % pid
            assert {ip for ip, _ in addrs} == {"127.0.0.1"}, addrs
        assert ("127.0.0.1", cluster.mon_port) in _listen_addrs(st["daemons"]["mon.a"])
        # keyrings are private and the key is not part of what start reports
        mode = stat.S_IMODE(os.stat(cluster.admin_keyring_path).st_mode)
        assert mode == 0o600
        assert cluster.admin_key and cluster.admin_key not in repr(cluster.info)
        for root, _dirs, files in os.walk(cluster.dir):
            for name in files:
                if name == "keyring" or name.endswith(".keyring"):
                    assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600, name
    finally:
        res = cluster.stop()
    assert res["removed"] is True
    assert sorted(res["stopped"]) == pids
    assert not directory.exists()
    assert _procs_with(cluster.conf_path) == []
    st = run_tool("status", directory, 30)
    assert st["running"] is False and st["exists"] is False


def test_stop_refuses_a_directory_it_did_not_make(tmp_path):
    (tmp_path / "precious").write_text("keep me")
    with pytest.raises(RuntimeError, match="not a ceph-dev-cluster directory"):
        run_tool("stop", tmp_path, 30)
    assert (tmp_path / "precious").read_text() == "keep me"


def test_start_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "precious").write_text("keep me")
    with pytest.raises(RuntimeError, match="not empty"):
        run_tool("start", tmp_path, 30)
    assert os.listdir(str(tmp_path)) == ["precious"]


def test_session_cluster_shape(ceph_cluster):
    assert ceph_cluster.mon_addr == "127.0.0.1:%d" % ceph_cluster.mon_port
    assert "v1:%s" % ceph_cluster.mon_addr in ceph_cluster.mon_host
    assert ceph_cluster.ceph_cli("fsid", "--format", "json")["fsid"] == ceph_cluster.fsid
    pools = {p["pool_name"]: p for p in ceph_cluster.ceph_cli("osd", "pool", "ls", "detail", "--format", "json")}
    rbd_pool = pools[ceph_cluster.pool]
    assert rbd_pool["size"] == 1
    assert "rbd" in rbd_pool["application_metadata"]
    st = ceph_cluster.ceph_cli("status", "--format", "json")
    assert st["health"]["status"] == "HEALTH_OK", st["health"]
    assert st["mgrmap"]["available"] is True
    assert st["osdmap"]["num_up_osds"] == 1


def test_mon_speaks_msgr_v1_on_mon_addr(ceph_cluster):
    """The kernel client (msgr v1) is given mon_addr: a v1 monitor greets a
    new connection with the legacy banner."""
    with socket.create_connection(("127.0.0.1", ceph_cluster.mon_port), timeout=10) as s:
        s.settimeout(10)
        banner = b""
        while len(banner) < 9:
            chunk = s.recv(9 - len(banner))
            if not chunk:
                break
            banner += chunk
    assert banner == b"ceph v027"


def test_start_refuses_a_port_in_use(ceph_cluster, tmp_path):
    with pytest.raises(RuntimeError, match="port %d on 127.0.0.1 is in use" % ceph_cluster.mon_port):
        run_tool("start", tmp_path / "clash", 30, "--mon-port", str(ceph_cluster.mon_port))
    assert not (tmp_path / "clash").exists()


def test_two_clusters_side_by_side(ceph_cluster, tmp_path):
    from cephlab import ports  # tools/ is on sys.path through tests.cephfixture
    port = ports.pick_free(1, exclude=(ceph_cluster.mon_port,))[0]
    other = start_cluster(tmp_path / "second", mon_port=port)
    try:
        assert other.mon_addr == "127.0.0.1:%d" % port
        assert other.fsid != ceph_cluster.fsid
        assert other.mon_port != ceph_cluster.mon_port
        assert other.mon_host != ceph_cluster.mon_host
        name = "h1-isolation-" + uuid.uuid4().hex[:6]
        cl = other.rados_client()
        try:
            with cl.open_ioctx(other.pool) as io:
                rbd.RBD().create(io, name, 4 * MiB)
        finally:
            cl.shutdown()
        assert name in _images(other)
        assert name not in _images(ceph_cluster)
        # the admin key of one cluster does not open the other
        with pytest.raises(rados.Error):
            other.rados_client(key=ceph_cluster.admin_key, timeout=5).shutdown()
        for c in (ceph_cluster, other):
            st = c.mon_command(prefix="status")
            assert st["health"]["status"] == "HEALTH_OK", st["health"]
    finally:
        other.stop()


def test_cephx_is_enforced(ceph_cluster):
    import cephlab.keys  # tools/ is on sys.path through tests.cephfixture
    client_id = "h1-cephx-" + uuid.uuid4().hex[:6]
    key = create_client_key(ceph_cluster, client_id, {"mon": "profile rbd", "osd": "profile rbd pool=rbd"})
    try:
        good = ceph_cluster.rados_client(client_id, key=key, timeout=10)
        try:
            assert good.get_fsid() == ceph_cluster.fsid
        finally:
            good.shutdown()
        with pytest.raises(rados.PermissionDeniedError):
            ceph_cluster.rados_client(client_id, key=cephlab.keys.new_key(), timeout=10)
        with pytest.raises(rados.PermissionDeniedError):
            ceph_cluster.rados_client("h1-nobody", key=cephlab.keys.new_key(), timeout=10)
        # a client that offers no authentication at all is not let in
        with pytest.raises(rados.Error):
            ceph_cluster.rados_client(client_id, key=key, timeout=5,
                                      conf={"auth_client_required": "none"})
    finally:
        remove_client(ceph_cluster, client_id)


def test_bluestore_restart_osd_keeps_data(bluestore_cluster):
    payload = os.urandom(MiB)
    name = "h1-restart-" + uuid.uuid4().hex[:6]
    cl = bluestore_cluster.rados_client()
    try:
        with cl.open_ioctx(bluestore_cluster.pool) as io:
            rbd.RBD().create(io, name, 8 * MiB)
            with rbd.Image(io, name) as img:
                img.write(payload, 2 * MiB)
    finally:
        cl.shutdown()
    before = run_tool("status", bluestore_cluster.dir, 30)["daemons"]
    res = bluestore_cluster.restart_osd()
    after = run_tool("status", bluestore_cluster.dir, 30)
    assert after["running"] and after["ready"], after
    assert after["daemons"]["osd.0"] != before["osd.0"]
    assert after["daemons"]["mon.a"] == before["mon.a"]
    assert res["restart_seconds"] > 0
    cl = bluestore_cluster.rados_client()
    try:
        with cl.open_ioctx(bluestore_cluster.pool) as io:
            with rbd.Image(io, name, read_only=True) as img:
                assert img.read(2 * MiB, MiB) == payload
    finally:
        cl.shutdown()


def test_fixture_object_from_tool_output(ceph_cluster):
    again = CephCluster(run_tool("status", ceph_cluster.dir, 30))
    assert again.fsid == ceph_cluster.fsid
    assert again.admin_key == ceph_cluster.admin_key
