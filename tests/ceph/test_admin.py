"""`rbdsr` admin command against real Ceph, with SRs in the XAPI stand-in:
snapshot names and retention, full + incremental exports restored with the
real `rbd import` / `rbd import-diff` and with `rbdsr import`, restore, and
bad input that must give a clear error, the right exit code and change nothing."""
import os
import re
import subprocess
import time
import uuid

import pytest
import rbd

from rbdsr.admin import names
from tests.ceph import adminkit as ak
from tests.ceph import backendkit as kit

MiB = 1 << 20
SIZE = 64 * MiB


@pytest.fixture(scope="module")
def env(ceph_cluster, tmp_path_factory):
    admin = kit.admin(ceph_cluster)
    pool = kit.make_pool(admin, "adm")
    cephx_id = "adm-" + uuid.uuid4().hex[:6]
    key = kit.make_user(admin, cephx_id, pool)
    xp = ak.Pool(tmp_path_factory.mktemp("xapi") / "xapi.json", hosts=2)
    secret = xp.add_secret(key)
    srs = {}
    with admin.open_ioctx(pool) as io:
        for name in ("a", "b"):
            sr_uuid = str(uuid.uuid4())
            image = "sr-" + name
            rbd.RBD().create(io, image, SIZE, old_format=False, features=1)
            with rbd.Image(io, image) as img:
                img.metadata_set("rbdsr.sr_uuid", sr_uuid)
            dconf = kit.dconf(ceph_cluster, pool, None, user=cephx_id, SCSIid=image)
            del dconf["chappassword"]
            dconf["chappassword_secret"] = secret
            srs[name] = xp.add_sr("rbd " + name, dconf, sr_uuid)
        # an SR whose device-config names SR b's image
        dconf["SCSIid"] = "sr-b"
        srs["c"] = xp.add_sr("rbd c", dconf)
    e = {"cluster": ceph_cluster, "admin": admin, "pool": pool, "xp": xp, "sr": srs,
         "tmp": tmp_path_factory.mktemp("exports")}
    yield e
    kit.remove_pool(admin, pool)
    admin.shutdown()


def run_ok(env, *args):
    rc, out, err = ak.rbdsr(env["xp"], *args)
    assert rc == 0, "rbdsr %s failed (%d): %s" % (" ".join(map(str, args)), rc, err)
    return out


def write(env, image, offset, data):
    with env["admin"].open_ioctx(env["pool"]) as io:
        with rbd.Image(io, image) as img:
            img.write(data, offset)


def rbd_cli(env, *args):
    c = env["cluster"]
    p = subprocess.run(["rbd", "--conf", c.conf_path, "--keyring", c.admin_keyring_path]
                       + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert p.returncode == 0, "rbd %s: %s" % (" ".join(map(str, args)), p.stderr)
    return p.stdout


def test_snapshot_name_carries_sr_uuid_and_utc_time(env):
    a = env["sr"]["a"]
    before = time.strftime(names.TIME_FMT, time.gmtime())
    name = run_ok(env, "snapshot", "rbd a", "--name", "nightly").strip()
    after = time.strftime(names.TIME_FMT, time.gmtime())
    p = names.parse(name)
    assert p is not None and p.sr_uuid == a and p.label == "nightly"
    assert before <= p.when <= after
    assert name in run_ok(env, "snapshots", a).split()
    assert name not in run_ok(env, "snapshots", env["sr"]["b"])
    run_ok(env, "remove-snapshot", a, name)
    assert name not in run_ok(env, "snapshots", a)


def test_retention_keeps_newest_and_never_touches_others(env):
    a, b, pool = env["sr"]["a"], env["sr"]["b"], env["pool"]
    with env["admin"].open_ioctx(pool) as io:
        with rbd.Image(io, "sr-a") as img:
            img.create_snap("manual")  # a user's own snapshot: not ours to remove
    bsnap = run_ok(env, "snapshot", b, "--name", "other").strip()
    made = [run_ok(env, "snapshot", a, "--name", "r%d" % i).strip() for i in range(3)]
    out = run_ok(env, "snapshot", a, "--name", "r3", "--keep", "2")
    made.append(out.splitlines()[0])
    assert [ln for ln in out.splitlines()[1:]] == ["removed %s (retention: keep 2)" % m for m in made[:2]]
    listed = run_ok(env, "snapshots", a).split("\n")
    assert [ln.split()[0] for ln in listed if ln] == made[2:]
    st = ak.state(env["admin"], pool)
    assert ["manual"] + made[2:] == [s for s, _ in st["sr-a"][2]]
    assert [s for s, _ in st["sr-b"][2]] == [bsnap]
    run_ok(env, "prune", a, "--keep", "1")
    assert [s for s, _ in ak.state(env["admin"], pool)["sr-a"][2]] == ["manual", made[3]]
    for s in [made[3], bsnap]:
        run_ok(env, "remove-snapshot", a if s == made[3] else b, s)
    with env["admin"].open_ioctx(pool) as io:
        with rbd.Image(io, "sr-a") as img:
            img.remove_snap("manual")


def _data(seed, n):
    return (("%08d" % seed).encode() * (n // 8 + 1))[:n]


@pytest.fixture(scope="module")
def chain(env):
    """Two snapshots of SR a with known data, exported full + incremental."""
    a = env["sr"]["a"]
    write(env, "sr-a", 0, _data(1, 3 * MiB))
    write(env, "sr-a", 40 * MiB + 4096, _data(2, MiB + 17))
    s1 = run_ok(env, "snapshot", a, "--name", "c1").strip()
    write(env, "sr-a", 512 * 1024, _data(3, 2 * MiB))           # overwrite across objects
    write(env, "sr-a", 40 * MiB + 4096, bytes(MiB + 17))         # zeroed again
    write(env, "sr-a", SIZE - 8192, _data(4, 8192))              # the very end
    time.sleep(1.1)  # a second snapshot name needs the next second or another label; label differs anyway
    s2 = run_ok(env, "snapshot", a, "--name", "c2").strip()
    tmp = env["tmp"]
    full, inc = str(tmp / "full.rbd"), str(tmp / "inc.rbddiff")
    run_ok(env, "export", a, "--snapshot", s1, full)
    run_ok(env, "export", a, "--snapshot", s2, "--since", s1, inc)
    return {"s1": s1, "s2": s2, "full": full, "inc": inc}


def test_exports_restore_with_stock_rbd_cli(env, chain):
    for f in (chain["full"], chain["inc"]):
        subprocess.run(["sha256sum", "-c", os.path.basename(f) + ".sha256"], cwd=os.path.dirname(f),
                       check=True, stdout=subprocess.PIPE, timeout=60)
    dest = "%s/stock" % env["pool"]
    rbd_cli(env, "import", "--export-format", "2", chain["full"], dest)
    assert chain["s1"] in rbd_cli(env, "snap", "ls", dest)
    rbd_cli(env, "import-diff", chain["inc"], dest)
    admin, pool = env["admin"], env["pool"]
    assert ak.read_all(admin, pool, "stock", chain["s1"]) == ak.read_all(admin, pool, "sr-a", chain["s1"])
    assert ak.read_all(admin, pool, "stock", chain["s2"]) == ak.read_all(admin, pool, "sr-a", chain["s2"])
    assert ak.read_all(admin, pool, "stock") == ak.read_all(admin, pool, "sr-a", chain["s2"])


def test_exports_restore_with_rbdsr_import(env, chain):
    out = run_ok(env, "import", chain["full"], chain["inc"], "--image", "mine", "--sr", env["sr"]["a"])
    assert "snapshots: %s, %s" % (chain["s1"], chain["s2"]) in out
    admin, pool = env["admin"], env["pool"]
    assert ak.read_all(admin, pool, "mine", chain["s1"]) == ak.read_all(admin, pool, "sr-a", chain["s1"])
    assert ak.read_all(admin, pool, "mine") == ak.read_all(admin, pool, "sr-a", chain["s2"])
    assert ak.state(admin, pool)["mine"][1] == []  # no "import incomplete" tag left


def test_rbdsr_import_reads_stock_rbd_exports(env, chain):
    """The other way round: files written by the real rbd CLI (an export-diff
    after our full export; a whole `rbd export --export-format 2`, which carries
    every snapshot and ends at the image head)."""
    tmp = env["tmp"]
    spec = "%s/sr-a" % env["pool"]
    f1, f2 = str(tmp / "stock-full"), str(tmp / "stock-diff")
    rbd_cli(env, "export-diff", "--from-snap", chain["s1"], "%s@%s" % (spec, chain["s2"]), f2)
    run_ok(env, "import", chain["full"], f2, "--image", "fromstock", "--sr", env["sr"]["a"], "--no-verify")
    admin, pool = env["admin"], env["pool"]
    assert ak.read_all(admin, pool, "fromstock", chain["s2"]) == ak.read_all(admin, pool, "sr-a", chain["s2"])
    rbd_cli(env, "export", "--export-format", "2", "%s/stock" % env["pool"], f1)
    run_ok(env, "import", f1, "--image", "fromstock2", "--sr", env["sr"]["a"], "--no-verify")
    assert ak.read_all(admin, pool, "fromstock2") == ak.read_all(admin, pool, "stock")
    assert ak.read_all(admin, pool, "fromstock2", chain["s1"]) == ak.read_all(admin, pool, "sr-a", chain["s1"])


def test_restore_refused_while_attached_or_open_then_done(env, chain):
    a, admin, pool, xp = env["sr"]["a"], env["admin"], env["pool"], env["xp"]
    write(env, "sr-a", 0, _data(9, MiB))
    xp.set_attached(a, True)
    before = ak.state(admin, pool)
    rc, out, err = ak.rbdsr(xp, "restore", a, "--snapshot", chain["s1"])
    assert rc == 3 and "attached on host0, host1" in err, err
    xp.set_attached(a, False)
    with admin.open_ioctx(pool) as io:
        with rbd.Image(io, "sr-a") as held:  # a writer elsewhere: it holds a watch
            rc, out, err = ak.rbdsr(xp, "restore", a, "--snapshot", chain["s1"])
            assert held.size() == SIZE
    assert rc == 3 and "still open by" in err, err
    assert ak.state(admin, pool) == before
    assert ak.read_all(admin, pool, "sr-a")[:MiB] == _data(9, MiB)
    run_ok(env, "restore", a, "--snapshot", chain["s1"])
    assert ak.read_all(admin, pool, "sr-a") == ak.read_all(admin, pool, "sr-a", chain["s1"])


def _bad_files(env, chain):
    tmp = env["tmp"]
    files = {}
    junk = str(tmp / "junk")
    with open(junk, "wb") as f:
        f.write(b"this is not an export\n" * 100)
    subprocess.run("sha256sum junk > junk.sha256", shell=True, cwd=str(tmp), check=True, timeout=30)
    files["junk"] = junk
    data = open(chain["full"], "rb").read()
    cut = str(tmp / "cut.rbd")
    with open(cut, "wb") as f:
        f.write(data[:len(data) // 2])
    subprocess.run("sha256sum cut.rbd > cut.rbd.sha256", shell=True, cwd=str(tmp), check=True, timeout=30)
    files["cut"] = cut
    damaged = str(tmp / "damaged.rbd")
    with open(damaged, "wb") as f:  # one data byte changed: still a well-formed stream
        f.write(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    with open(damaged + ".sha256", "w") as f:
        f.write(open(chain["full"] + ".sha256").read().replace("full.rbd", "damaged.rbd"))
    files["damaged"] = damaged
    bare = str(tmp / "bare.rbd")
    with open(bare, "wb") as f:
        f.write(data)
    files["bare"] = bare
    return files


ZERO_TIME = "20200101T000000Z"


def bad_rows(env, chain, files):
    a, b, c = env["sr"]["a"], env["sr"]["b"], env["sr"]["c"]
    bsnap = "rbdsr-%s-%s" % (b, ZERO_TIME)
    missing = "rbdsr-%s-%s" % (a, ZERO_TIME)
    out = str(env["tmp"] / "never")
    return [
        (["snapshot", "no-such-sr"], 2, "no SR named 'no-such-sr'"),
        (["snapshots", str(uuid.uuid4())], 2, "no SR with uuid"),
        (["snapshot", a, "--name", "bad-label"], 2, "snapshot label"),
        (["snapshot", a, "--keep", "0"], 2, "--keep must be at least 1"),
        (["snapshot", c], 3, "belongs to SR %s, not to SR %s" % (b, c)),
        (["export", a, "--snapshot", bsnap, out], 2, "is a snapshot of SR %s, not of SR %s" % (b, a)),
        (["remove-snapshot", a, bsnap], 2, "is a snapshot of SR %s" % b),
        (["remove-snapshot", a, "manual"], 2, "is not an rbdsr snapshot name"),
        (["export", a, "--snapshot", missing, out], 2, "has no snapshot %s" % missing),
        (["restore", a, "--snapshot", missing], 2, "has no snapshot"),
        (["clone", a, "--snapshot", missing, "--image", "cl"], 2, "has no snapshot"),
        (["clone", a, "--snapshot", chain["s1"], "--image", "sr-b"], 2, "already exists"),
        (["export", a, "--snapshot", chain["s1"], "--since", chain["s2"], out], 2, "is not older than"),
        (["export", a, "--snapshot", chain["s1"], chain["full"]], 2, "exists: refusing to overwrite"),
        (["flatten", a], 2, "is not a clone"),
        (["import", files["junk"], "--image", "new", "--sr", a], 2, "is not an RBD export"),
        (["import", files["cut"], "--image", "new", "--sr", a], 2, "is truncated"),
        (["import", files["damaged"], "--image", "new", "--sr", a], 2, "does not match its checksum"),
        (["import", files["bare"], "--image", "new", "--sr", a], 2, "has no checksum file"),
        (["import", chain["inc"], chain["full"], "--image", "new", "--sr", a], 2,
         "the chain must start with a full export"),
        (["import", chain["full"], chain["full"], "--image", "new", "--sr", a], 2,
         "only the first file of a chain"),
        (["import", chain["full"], chain["inc"], "--image", "sr-b", "--sr", a], 2, "already exists"),
        (["import", chain["full"], chain["inc"], "--image", "bad/name", "--sr", a], 2, "contains '/' or '@'"),
    ]


def test_bad_input_clear_error_nothing_changed(env, chain):
    files = _bad_files(env, chain)
    # a chain with a gap: full s1, then a diff s2 -> s3 (the s1 -> s2 diff left out)
    a = env["sr"]["a"]
    s3 = run_ok(env, "snapshot", a, "--name", "c3").strip()
    gap = str(env["tmp"] / "gap.rbddiff")
    run_ok(env, "export", a, "--snapshot", s3, "--since", chain["s2"], gap)
    rows = bad_rows(env, chain, files) + [
        (["import", chain["full"], gap, "--image", "new", "--sr", a], 2, "out of order or one is missing")]
    before = ak.state(env["admin"], env["pool"])
    listing = sorted(os.listdir(str(env["tmp"])))
    failures = []
    for args, code, fragment in rows:
        rc, out, err = ak.rbdsr(env["xp"], *args)
        if rc != code or fragment not in err or "Traceback" in err:
            failures.append("%s -> rc %d, %r (wanted rc %d, %r)" % (args, rc, err.strip(), code, fragment))
    assert not failures, "\n".join(failures)
    assert ak.state(env["admin"], env["pool"]) == before
    assert sorted(os.listdir(str(env["tmp"]))) == listing


def test_usage_errors_exit_2(env):
    for args in ([], ["export", "x"], ["snapshot", "x", "--keep", "many"]):
        rc, out, err = ak.rbdsr(env["xp"], *args)
        assert rc == 2 and "usage:" in err and "Traceback" not in err


def test_no_secret_on_any_output(env, chain):
    key = [v for v in env["xp"].db["secret"].values()][0]["value"]
    rc, out, err = ak.rbdsr(env["xp"], "snapshots", env["sr"]["a"])
    assert rc == 0 and key not in out + err
    rc, out, err = ak.rbdsr(env["xp"], "clone", env["sr"]["a"], "--snapshot", chain["s1"], "--image", "sr-b")
    assert key not in out + err
    assert re.search(r"already exists", err)
