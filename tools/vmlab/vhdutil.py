"""Build sm's VHD tool, vhd-util, from the blktap source beside the project
(../shared/blktap, or env RBDSR_BLKTAP_SRC) and cache the binary.

sm's LVHD code runs /usr/bin/vhd-util for every VHD operation (create, snapshot, query,
scan, coalesce, resize, check); XenServer builds it from blktap, which Debian does not
ship. The source tree is read-only test data: it is copied to a temporary directory and
built there (autoreconf, configure --disable-shared so the binary carries libvhd, then
make -C lvm and -C vhd). The binary is cached as <cache>/<key>/vhd-util, where key is a
hash of the source tree and of this file: a changed source or recipe builds anew.

Runs on the host as root with /usr/bin/python3 (stdlib only).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CACHE = "/var/cache/rbdsr-vmlab/vhd-util"
# blktap's configure.ac includes a VERSION file its git source does not carry
VERSION = "4.0.8"
# gcc 12 warns where blktap's -Werror expects silence
CFLAGS = "-g -O2 -Wno-error"
BUILD_TIMEOUT = 1200


def source_dir():
    return os.environ.get("RBDSR_BLKTAP_SRC") or os.path.join(os.path.dirname(REPO), "shared", "blktap")


def cache_dir():
    return os.environ.get("RBDSR_VHDUTIL_CACHE") or DEFAULT_CACHE


def available(src=None):
    src = src or source_dir()
    return os.path.isfile(os.path.join(src, "vhd", "vhd-util.c"))


def source_hash(src=None):
    """sha256 over every file of the source tree (path, size, bytes) and this recipe."""
    src = src or source_dir()
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    for dirpath, dirnames, files in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)
            if os.path.islink(path):
                data = ("link:" + os.readlink(path)).encode()
            else:
                with open(path, "rb") as f:
                    data = f.read()
            h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def cached_binary(key=None):
    """Path of the cached vhd-util for this source, or None when not built yet."""
    key = key or source_hash()
    path = os.path.join(cache_dir(), key[:16], "vhd-util")
    return path if os.path.isfile(path) else None


def log(msg):
    print("[build-vhdutil] " + msg, file=sys.stderr, flush=True)


def _run(argv, cwd, logf, env=None):
    logf.write("\n===== %s\n" % " ".join(argv))
    logf.flush()
    p = subprocess.run(argv, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=BUILD_TIMEOUT, env=dict(os.environ, LC_ALL="C", **(env or {})))
    if p.returncode != 0:
        raise SystemExit("build-vhdutil: %s failed (rc %d); log: %s" % (" ".join(argv), p.returncode, logf.name))


def build(force=False):
    """Return the path of the cached vhd-util, building it first when needed."""
    src = source_dir()
    if not available(src):
        raise SystemExit("build-vhdutil: no blktap source at %s (vhd/vhd-util.c); set RBDSR_BLKTAP_SRC" % src)
    key = source_hash(src)
    have = cached_binary(key)
    if have and not force:
        return have
    for tool in ("autoreconf", "libtoolize", "make", "gcc"):
        if not shutil.which(tool):
            raise SystemExit("build-vhdutil: %s not found (tools/setup-env installs the build packages)" % tool)
    out_dir = os.path.join(cache_dir(), key[:16])
    os.makedirs(out_dir, exist_ok=True)
    logpath = os.path.join(out_dir, "build.log")
    work = tempfile.mkdtemp(prefix="rbdsr-blktap-")
    try:
        tree = os.path.join(work, "blktap")
        shutil.copytree(src, tree, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        for dirpath, dirnames, files in os.walk(tree):  # the source share is read-only
            for n in dirnames + files:
                p = os.path.join(dirpath, n)
                if not os.path.islink(p):
                    os.chmod(p, os.stat(p).st_mode | 0o200)
        with open(os.path.join(tree, "VERSION"), "w") as f:
            f.write(VERSION + "\n")
        log("building vhd-util from %s (key %s, log %s)" % (src, key[:16], logpath))
        jobs = str(max(1, min(2, os.cpu_count() or 1)))
        with open(logpath, "w") as logf:
            _run(["autoreconf", "-fi"], tree, logf)
            _run(["./configure", "--disable-shared", "--enable-static"], tree, logf, {"CFLAGS": CFLAGS})
            for sub in ("lvm", "vhd/lib", "vhd"):
                _run(["make", "-j", jobs, "-C", sub, "CFLAGS=" + CFLAGS], tree, logf)
        built = os.path.join(tree, "vhd", "vhd-util")
        if not os.path.isfile(built):
            raise SystemExit("build-vhdutil: make left no vhd/vhd-util (log %s)" % logpath)
        tmp = os.path.join(out_dir, "vhd-util.tmp")
        shutil.copy2(built, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, os.path.join(out_dir, "vhd-util"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log("vhd-util cached at %s" % os.path.join(out_dir, "vhd-util"))
    return os.path.join(out_dir, "vhd-util")


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="tools/build-vhdutil",
                                 description="Build (once) vhd-util from the blktap source and cache it; "
                                             "prints the cached binary's path.")
    ap.add_argument("--force", action="store_true", help="rebuild even when cached")
    ap.add_argument("--check", action="store_true", help="exit 0 if cached for the current source, else 1")
    args = ap.parse_args(argv)
    if args.check:
        path = cached_binary() if available() else None
        print(path or "needs build")
        return 0 if path else 1
    print(build(force=args.force))
    return 0
