"""pytest plugin: real throwaway Ceph clusters made by tools/ceph-dev-cluster.

Fixtures: `ceph_cluster` (session, memstore) and `bluestore_cluster` (module,
for tests that restart the OSD). Helpers: `start_cluster()` for tests that need
their own cluster, `create_client_key()` for cephx users.

Missing Ceph packages make the fixtures FAIL, not skip: the ceph tier is meant
to run for real (CI installs the packages).
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "ceph-dev-cluster")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from cephlab import fsprobe, install, keys  # noqa: E402

START_TIMEOUT = float(os.environ.get("CEPH_DEV_CLUSTER_TIMEOUT", "180"))
CLI_TIMEOUT = 60


class CephCluster(object):
    """A running dev cluster, described by what `ceph-dev-cluster start --json` printed."""

    def __init__(self, info):
        self.info = info
        self.dir = info["dir"]
        self.conf_path = info["conf"]
        self.admin_keyring_path = info["admin_keyring"]
        self.mon_addr = info["mon_addr"]
        self.mon_host = info["mon_host"]
        self.mon_port = int(info["mon_port"])
        self.fsid = info["fsid"]
        self.pool = info["pool"]
        self.objectstore = info["objectstore"]
        self.mgr_modules = info.get("mgr_modules")
        self.startup_seconds = info.get("startup_seconds")

    @property
    def admin_key(self):
        """For tests only: the client.admin key, read from the keyring file."""
        return keys.read_key(self.admin_keyring_path, "client.admin")

    def rados_client(self, name="admin", key=None, timeout=30, conf=None):
        """A connected rados.Rados as client.<name>; key (text) for users that
        have no keyring file in the cluster dir."""
        import rados
        options = {"rados_mon_op_timeout": str(timeout), "rados_osd_op_timeout": str(timeout),
                   "client_mount_timeout": str(timeout)}
        if key is not None:
            options["key"] = key
            options["keyring"] = "/dev/null"
        options.update(conf or {})
        cl = rados.Rados(conffile=self.conf_path, name="client.%s" % name, conf=options)
        try:
            cl.connect(timeout=timeout)
        except BaseException:
            cl.shutdown()
            raise
        return cl

    def ceph_cli(self, *args, **kw):
        """Run the `ceph` CLI as client.admin; parsed JSON when asked for
        (--format json / -f json), else the text output."""
        timeout = kw.pop("timeout", CLI_TIMEOUT)
        argv = ["ceph", "--conf", self.conf_path, "--keyring", self.admin_keyring_path,
                "--connect-timeout", str(timeout)] + [str(a) for a in args]
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=timeout + 10)
        if res.returncode != 0:
            raise RuntimeError("ceph %s failed (%d): %s" % (" ".join(argv[5:]), res.returncode,
                                                             res.stderr.strip()))
        if _wants_json(args):
            return json.loads(res.stdout)
        return res.stdout

    def mon_command(self, timeout=30, **cmd):
        """One mon command through librados as client.admin; parsed JSON."""
        cmd.setdefault("format", "json")
        cl = self.rados_client(timeout=timeout)
        try:
            ret, out, err = cl.mon_command(json.dumps(cmd), b"", timeout=timeout)
        finally:
            cl.shutdown()
        if ret != 0:
            raise RuntimeError("mon command %s failed (%d): %s" % (cmd["prefix"], ret, err))
        return json.loads(out) if out.strip() else None

    def tool(self, command, *extra, timeout=None):
        return run_tool(command, self.dir, timeout or START_TIMEOUT, *extra)

    def restart_osd(self):
        return self.tool("restart-osd")

    def stop(self):
        return self.tool("stop")


def _wants_json(args):
    args = [str(a) for a in args]
    for i, a in enumerate(args):
        if a in ("--format=json", "--format=json-pretty"):
            return True
        if a in ("--format", "-f") and i + 1 < len(args) and args[i + 1].startswith("json"):
            return True
    return False


def run_tool(command, directory, timeout, *extra):
    """Run tools/ceph-dev-cluster <command> --json; parsed output. Raises
    RuntimeError with the tool's error text when it fails."""
    argv = [TOOL, command, "--dir", str(directory), "--json", "--no-install"] + list(extra)
    if command in ("start", "restart-osd"):
        argv += ["--timeout", str(timeout)]
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=timeout + 60)
    if res.returncode != 0 and not (command == "status" and res.returncode == 3):
        raise RuntimeError("ceph-dev-cluster %s failed (%d): %s" % (command, res.returncode,
                                                                     res.stderr.strip()))
    return json.loads(res.stdout)


def require_ceph():
    gone = install.missing()
    if gone:
        pytest.fail("Ceph is not installed (%s): the ceph tier needs Debian's ceph-mon ceph-mgr ceph-osd "
                    "ceph-common python3-rados python3-rbd and Debian's python3 (.venv)" % ", ".join(gone),
                    pytrace=False)


def start_cluster(directory, objectstore="memstore", timeout=START_TIMEOUT, mgr_modules=None, mon_port=None):
    """Start a cluster in directory; on failure remove what was left and fail the test.
    mgr_modules None: the tool's default (standard; none in the VM guest);
    mon_port None: a free port."""
    require_ceph()
    extra = ["--objectstore", objectstore]
    if mgr_modules:
        extra += ["--mgr-modules", mgr_modules]
    if mon_port:
        extra += ["--mon-port", str(mon_port)]
    try:
        info = run_tool("start", directory, timeout, *extra)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        try:
            run_tool("stop", directory, 60)
        except Exception:  # the start error is the one to report
            pass
        pytest.fail("could not start a %s dev cluster: %s" % (objectstore, e), pytrace=False)
    return CephCluster(info)


def create_client_key(cluster, client_id, caps):
    """Create (or fetch) cephx user client.<client_id> with caps, a dict
    {"mon": "profile rbd", "osd": "profile rbd pool=rbd"}; returns its key.
    Goes through librados so the key never appears on a command line."""
    flat = []
    for svc in sorted(caps):
        flat += [svc, caps[svc]]
    out = cluster.mon_command(prefix="auth get-or-create", entity="client.%s" % client_id, caps=flat)
    return out[0]["key"]


def remove_client(cluster, client_id):
    cluster.mon_command(prefix="auth rm", entity="client.%s" % client_id)


@pytest.fixture(scope="session")
def ceph_cluster(tmp_path_factory):
    cluster = start_cluster(tmp_path_factory.mktemp("ceph") / "cluster", "memstore")
    yield cluster
    cluster.stop()


def bluestore_parent(tmp_path_factory):
    """A fresh dir where bluestore can live: pytest's tmp dir unless it is on a
    filesystem without O_DIRECT (the VM guest's /tmp is tmpfs), then /var/tmp."""
    base = tmp_path_factory.mktemp("ceph-bluestore")
    if fsprobe.supports_odirect(str(base)):
        return str(base)
    return tempfile.mkdtemp(prefix="ceph-bluestore-", dir="/var/tmp")


@pytest.fixture(scope="module")
def bluestore_cluster(tmp_path_factory):
    parent = bluestore_parent(tmp_path_factory)
    cluster = start_cluster(os.path.join(parent, "cluster"), "bluestore")
    yield cluster
    cluster.stop()
    if parent.startswith("/var/tmp/"):
        os.rmdir(parent)
