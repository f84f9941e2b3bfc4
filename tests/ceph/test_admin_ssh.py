"""The admin command on an SR whose device-config says auth=ssh: it resolves the SR's
credentials as the driver does -- the SSH login (user in chapuser, password in a XAPI
secret) to a monitor host (a real sshd on 127.0.0.1, host key pinned), which hands back
the least-privilege cephx user's key -- and the SSH password and the fetched key show up
in no process's argv or environment, no output, and no world-readable file."""
import os
import stat
import time
import uuid

import pytest
import rbd

from tests.ceph import adminkit as ak
from tests.ceph import backendkit as kit
from tests.leakscan import AUTH_GET, ProcScanner, files_containing
from tests.sshd import sshd  # noqa: F401  (fixture)

pytestmark = pytest.mark.ssh
MiB = 1 << 20


@pytest.fixture(scope="module")
def env(ceph_cluster, sshd, tmp_path_factory):  # noqa: F811
    admin = kit.admin(ceph_cluster)
    pool = kit.make_pool(admin, "ads")
    cephx_id = "adm-ssh-" + uuid.uuid4().hex[:6]
    key = kit.make_user(admin, cephx_id, pool)   # what the SSH login will fetch
    xp = ak.Pool(tmp_path_factory.mktemp("xapi") / "xapi.json", hosts=2)
    sr_uuid = str(uuid.uuid4())
    with admin.open_ioctx(pool) as io:
        rbd.RBD().create(io, "sr-ssh", 64 * MiB, old_format=False, features=1)
        with rbd.Image(io, "sr-ssh") as img:
            img.metadata_set("rbdsr.sr_uuid", sr_uuid)
            img.write(b"ssh-admin" * 1000, 5 * MiB)
    dconf = sshd.dconf(ceph_cluster, pool, cephx_id=cephx_id, SCSIid="sr-ssh")
    del dconf["chappassword"]   # the password lives in a XAPI secret, as the wizard leaves it
    dconf["chappassword_secret"] = xp.add_secret(sshd.password)
    xp.add_sr("rbd ssh", dconf, sr_uuid)
    wrong = dict(dconf, chappassword_secret=xp.add_secret(sshd.password + "x"))
    xp.add_sr("rbd ssh wrong", wrong)
    yield {"admin": admin, "pool": pool, "key": key, "xp": xp, "sr": sr_uuid, "cephx_id": cephx_id,
           "tmp": tmp_path_factory.mktemp("ssh-exports")}
    kit.remove_pool(admin, pool)
    admin.shutdown()


def test_admin_resolves_credentials_over_ssh_and_leaks_nothing(ceph_cluster, sshd, env, tmp_path):  # noqa: F811
    xp, sr = env["xp"], env["sr"]
    needles = [sshd.password, env["key"]]
    canary = "adm-canary-" + uuid.uuid4().hex  # positive control: a value that IS on a command line
    since = time.time() - 1
    outputs = []

    def run(*args, **kw):
        rc, out, err = ak.rbdsr(xp, *args)
        outputs.append(out + err)
        assert rc == kw.get("rc", 0), "rbdsr %s: rc %d: %s" % (" ".join(map(str, args)), rc, err)
        return out, err

    scanner = ProcScanner(needles + [canary], [AUTH_GET], str(tmp_path / "stop"))
    try:
        ak.rbdsr(xp, "--help")  # nothing secret; and the canary on a command line:
        os.system("sh -c 'sleep 0.3; : %s'" % canary)
        snap = run("snapshot", sr, "--name", "ssh")[0].strip()
        assert snap in run("snapshots", "rbd ssh")[0]
        full = str(env["tmp"] / "full")
        run("export", sr, "--snapshot", snap, full)
        run("import", full, "--image", "from-ssh", "--sr", sr)
        run("restore", sr, "--snapshot", snap)
        # errors on the same path: a snapshot that is not there, a wrong SSH password
        err = run("export", sr, "--snapshot", snap.replace("-ssh", "-nope"), str(env["tmp"] / "x"), rc=2)[1]
        assert "no snapshot" in err
        err = run("snapshots", "rbd ssh wrong", rc=1)[1]
        assert "SSH login" in err and "refused" in err, err
        run("remove-snapshot", sr, snap)
    finally:
        scan = scanner.finish()

    with env["admin"].open_ioctx(env["pool"]) as io:
        with rbd.Image(io, "from-ssh", read_only=True) as img:
            assert img.read(5 * MiB, 9000) == b"ssh-admin" * 1000
    # the scanner caught the remote `ceph auth get client.<id>` the SSH login ran: it was
    # fast enough to have seen a secret on a command line, and it saw the canary
    assert AUTH_GET in scan["seen"], scan["seen"]
    assert [h for h in scan["hits"] if canary in h[2]], "the scanner missed the canary"
    assert [h for h in scan["hits"] if canary not in h[2]] == []
    for text in outputs:
        assert not any(n in text for n in needles), text
    # only XAPI's database holds the password (in its secret), readable by root alone
    leaks = files_containing(needles, since, skip=[ceph_cluster.dir, "/proc"])
    assert [p for p, _ in leaks if not os.path.basename(p).startswith("xapi.json")] == [], leaks
    for path, _ in leaks:
        assert not os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH), path
