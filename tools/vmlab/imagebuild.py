"""Build the VM lab image once and cache it outside the repo.

Artifacts (in the cache dir, default /var/cache/rbdsr-vmlab, override with
RBDSR_VMLAB_CACHE):
  rootfs.ext4   Debian bookworm minbase + packages.txt + the kernel's modules (sparse ext4)
  vmlinux       uncompressed kernel (PVH entry point, boots ~4 s faster than bzImage)
  vmlinuz       the same kernel as bzImage (fallback)
  initrd.img    busybox initrd: loads virtio/ext4/9p modules, mounts /dev/vda, switch_roots
  stamp.json    recipe hash + facts about the build; written last, so its presence means
                the build is complete

The rootfs also carries /usr/bin/vhd-util (sm's VHD tool) built from the blktap source
beside the project (tools/vmlab/vhdutil.py) when that source is there.

The recipe hash covers the files in RECIPE_FILES and the vhd-util source key; a rebuild
happens only when one of them changes.
The guest init (guest-init) is deliberately NOT part of the recipe: the initrd runs it
from the 9p-shared repo, so editing it needs no rebuild.

Runs on the host as root with /usr/bin/python3 (stdlib only).
"""
import fcntl
import hashlib
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vhdutil  # noqa: E402
RECIPE_FILES = ("imagebuild.py", "packages.txt", "initrd-init")
DEFAULT_CACHE = "/var/cache/rbdsr-vmlab"
SUITE = "bookworm"
ROOTFS_SIZE = "3G"
KERNEL_META = "linux-image-amd64"
# Loaded by the initrd, in this order after dependency resolution.
INITRD_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4",
                  "9pnet_virtio", "9p")
LOCK_TIMEOUT = 3600


def cache_dir():
    return os.environ.get("RBDSR_VMLAB_CACHE") or DEFAULT_CACHE


def recipe_hash():
    h = hashlib.sha256()
    for name in RECIPE_FILES:
        with open(os.path.join(HERE, name), "rb") as f:
            data = f.read()
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    h.update(b"vhd-util\0" + vhdutil_key().encode())
    return h.hexdigest()


def vhdutil_key():
    """Key of the vhd-util that goes into the image: its source hash, or 'absent'."""
    return vhdutil.source_hash() if vhdutil.available() else "absent"


def read_stamp(cache=None):
    cache = cache or cache_dir()
    try:
        with open(os.path.join(cache, "stamp.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_current(cache=None):
    cache = cache or cache_dir()
    stamp = read_stamp(cache)
    if not stamp or stamp.get("recipe") != recipe_hash():
        return False
    return all(os.path.exists(os.path.join(cache, n))
               for n in ("rootfs.ext4", "vmlinuz", "initrd.img"))


def log(msg):
    print("[vmlab-build] " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- apt sources

def _parse_sources():
    """Yield (uri, suite) pairs from this machine's apt sources (both formats)."""
    d = "/etc/apt/sources.list.d"
    files = ["/etc/apt/sources.list"]
    if os.path.isdir(d):
        files += [os.path.join(d, n) for n in sorted(os.listdir(d))]
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in text.split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.split()
                if "deb" not in fields.get("types", []):
                    continue
                for uri in fields.get("uris", []):
                    for suite in fields.get("suites", []):
                        yield uri, suite
        else:
            for line in text.splitlines():
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 3 and parts[0] == "deb":
                    rest = [p for p in parts[1:] if not p.startswith("[")]
                    if len(rest) >= 2:
                        yield rest[0], rest[1]


def debian_mirrors():
    """The mirror this machine's apt uses for bookworm (+ security / updates if present)."""
    found = {}
    for uri, suite in _parse_sources():
        found.setdefault(suite, uri.rstrip("/"))
    if SUITE not in found:
        raise SystemExit("vmlab: no '%s' suite in /etc/apt/sources* - cannot pick a mirror" % SUITE)
    return found


# ---------------------------------------------------------------- running steps

def run_step(label, argv, logf, timeout, cwd=None):
    """Run argv with output to logf; print a progress line every 10 s; hard timeout."""
    t0 = time.monotonic()
    log("%s ..." % label)
    logf.write("\n===== %s: %s\n" % (label, " ".join(argv)))
    logf.flush()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True,
                            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C"))
    state = {"lines": 0, "last": ""}

    def reader():
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            logf.write(line)
            state["lines"] += 1
            if line.strip():
                state["last"] = line.strip()[:100]
        logf.flush()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    next_report = t0 + 10
    while True:
        try:
            proc.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            now = time.monotonic()
            if now - t0 > timeout:
                os.killpg(proc.pid, 9)
                proc.wait()
                raise SystemExit("vmlab: %s timed out after %d s (log: %s)" % (label, timeout, logf.name))
            if now >= next_report:
                log("  %s: %3d s, %d lines, last: %s" % (label, now - t0, state["lines"], state["last"]))
                next_report = now + 10
    th.join(5)
    if proc.returncode != 0:
        raise SystemExit("vmlab: %s failed (rc %d); see %s" % (label, proc.returncode, logf.name))
    log("%s done in %.0f s" % (label, time.monotonic() - t0))


def _mounts_under(path):
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


def safe_rmtree(path):
    """Never delete through a mount (a leftover /proc bind in the chroot)."""
    if not os.path.exists(path):
        return
    left = _mounts_under(path)
    if left:
        raise SystemExit("vmlab: refusing to delete %s: still mounted: %s" % (path, left))
    shutil.rmtree(path)


# ---------------------------------------------------------------- rootfs

def build_rootfs(root, mirrors, logf):
    packages = []
    with open(os.path.join(HERE, "packages.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                packages.append(line)
    main = mirrors[SUITE]
    run_step("debootstrap %s (minbase) from %s" % (SUITE, main),
             ["debootstrap", "--variant=minbase", SUITE, root, main], logf, 1800)

    lines = ["deb %s %s main" % (main, SUITE)]
    if SUITE + "-updates" in mirrors:
        lines.append("deb %s %s-updates main" % (mirrors[SUITE + "-updates"], SUITE))
    if SUITE + "-security" in mirrors:
        lines.append("deb %s %s-security main" % (mirrors[SUITE + "-security"], SUITE))
    with open(os.path.join(root, "etc/apt/sources.list"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "etc/apt/apt.conf.d/90vmlab"), "w") as f:
        f.write('APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n')
    # No service may start inside the build chroot.
    prc = os.path.join(root, "usr/sbin/policy-rc.d")
    with open(prc, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(prc, 0o755)

    proc_dir = os.path.join(root, "proc")
    subprocess.run(["mount", "-t", "proc", "proc", proc_dir], check=True, timeout=30)
    try:
        run_step("apt-get update (chroot)", ["chroot", root, "apt-get", "-q", "update"], logf, 600)
        run_step("apt-get install %d packages (chroot)" % len(packages),
                 ["chroot", root, "apt-get", "-q", "-y", "install"] + packages, logf, 1800)
        kpkg = kernel_package(root)
        run_step("apt-get download %s" % kpkg,
                 ["chroot", root, "sh", "-c", "cd /tmp && apt-get -q download " + kpkg], logf, 600)
    finally:
        subprocess.run(["umount", proc_dir], timeout=60)
    os.unlink(prc)
    return kpkg


def install_vhdutil(root):
    """sm runs /usr/bin/vhd-util; without the blktap source the image has none (say so)."""
    if not vhdutil.available():
        log("no blktap source at %s: the image gets no vhd-util (real sm's VDI steps cannot run)"
            % vhdutil.source_dir())
        return None
    binary = vhdutil.build()
    shutil.copy2(binary, os.path.join(root, "usr/bin/vhd-util"))
    os.chmod(os.path.join(root, "usr/bin/vhd-util"), 0o755)
    log("vhd-util from %s installed at /usr/bin/vhd-util" % binary)
    return binary


def kernel_package(root):
    """Resolve the kernel metapackage to the versioned linux-image package."""
    out = subprocess.run(["chroot", root, "apt-cache", "depends", KERNEL_META],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True,
                         timeout=120).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip()
    raise SystemExit("vmlab: cannot resolve %s in the chroot" % KERNEL_META)


def install_kernel(root, kpkg, work, logf):
    debs = [n for n in os.listdir(os.path.join(root, "tmp")) if n.startswith(kpkg + "_")]
    if len(debs) != 1:
        raise SystemExit("vmlab: kernel .deb not found in chroot /tmp: %s" % debs)
    deb = os.path.join(root, "tmp", debs[0])
    kdir = os.path.join(work, "kernel")
    run_step("dpkg-deb -x %s" % debs[0], ["dpkg-deb", "-x", deb, kdir], logf, 600)
    os.unlink(deb)
    release = os.listdir(os.path.join(kdir, "lib/modules"))[0]
    dst = os.path.join(root, "lib/modules", release)
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(os.path.join(kdir, "lib/modules", release), dst, symlinks=True)
    shutil.copy2(os.path.join(kdir, "boot", "config-" + release), os.path.join(root, "boot"))
    run_step("depmod %s (chroot)" % release, ["chroot", root, "depmod", "-a", release], logf, 600)
    return kdir, release


def tidy_rootfs(root):
    """Drop what the guest never needs (smaller image, faster mkfs)."""
    archives = os.path.join(root, "var/cache/apt/archives")
    for name in os.listdir(archives):
        if name.endswith(".deb"):
            os.unlink(os.path.join(archives, name))
    for rel in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"):
        p = os.path.join(root, rel)
        if os.path.isdir(p):
            shutil.rmtree(p)
            os.makedirs(p)
    with open(os.path.join(root, "etc/hostname"), "w") as f:
        f.write("vmlab\n")
    with open(os.path.join(root, "etc/hosts"), "w") as f:
        f.write("127.0.0.1 localhost vmlab\n")
    with open(os.path.join(root, "etc/fstab"), "w") as f:
        f.write("# VM lab: mounts are done by tools/vmlab/guest-init\n")


# ---------------------------------------------------------------- kernel images

def extract_vmlinux(bzimage, out):
    """Decompress the xz payload of a bzImage into an ELF vmlinux; True on success."""
    with open(bzimage, "rb") as f:
        data = f.read()
    pos = data.find(b"\xfd7zXZ\x00")
    while pos >= 0:
        try:
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=None).decompress(data[pos:])
        except lzma.LZMAError:
            elf = b""
        if elf[:4] == b"\x7fELF":
            with open(out, "wb") as f:
                f.write(elf)
            return has_pvh_note(elf)
        pos = data.find(b"\xfd7zXZ\x00", pos + 1)
    return False


def has_pvh_note(elf):
    """True if the ELF carries XEN_ELFNOTE_PHYS32_ENTRY (18): qemu can boot it as PVH."""
    if elf[4] != 2:  # ELFCLASS64
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, off)
            name = elf[off + 12:off + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


# ---------------------------------------------------------------- initrd

def module_closure(moddir, names):
    """Module files (relative to moddir) for names plus dependencies, deps first."""
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            mod, _, rest = line.partition(":")
            deps[mod.strip()] = rest.split()
    by_name = {}
    for path in deps:
        base = os.path.basename(path).split(".ko")[0]
        by_name[base.replace("-", "_")] = path
    builtin = set()
    try:
        with open(os.path.join(moddir, "modules.builtin")) as f:
            for line in f:
                builtin.add(os.path.basename(line.strip()).split(".ko")[0].replace("-", "_"))
    except OSError:
        pass
    order = []

    def visit(path):
        if path in order:
            return
        for dep in reversed(deps[path]):
            visit(dep)
        order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key in builtin:
            continue
        if key not in by_name:
            raise SystemExit("vmlab: module %s is neither built in nor in modules.dep" % name)
        visit(by_name[key])
    return order


class Cpio:
    """Minimal writer of the 'newc' cpio format the kernel unpacks as initramfs."""

    def __init__(self, f):
        self.f = f
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0))
        self.ino += 1
        self.f.write(hdr.encode() + nb + b"\0" * ((-(110 + len(nb))) % 4))
        self.f.write(data + b"\0" * ((-len(data)) % 4))

    def dir(self, name):
        self._entry(name, 0o040755)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def chardev(self, name, major, minor):
        self._entry(name, 0o020600, rdev=(major, minor))

    def close(self):
        self._entry("TRAILER!!!", 0)


def build_initrd(root, release, out):
    moddir = os.path.join(root, "lib/modules", release)
    mods = module_closure(moddir, INITRD_MODULES)
    with open(os.path.join(HERE, "initrd-init"), "rb") as f:
        init = f.read()
    with open(os.path.join(root, "bin/busybox"), "rb") as f:
        busybox = f.read()
    with open(out, "wb") as f:
        c = Cpio(f)
        for d in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
            c.dir(d)
        c.chardev("dev/console", 5, 1)
        c.file("bin/busybox", busybox, 0o755)
        c.file("init", init, 0o755)
        for rel in mods:
            with open(os.path.join(moddir, rel), "rb") as mf:
                c.file("lib/modules/" + os.path.basename(rel), mf.read())
        c.file("modules.order", "".join(os.path.basename(r) + "\n" for r in mods).encode())
        c.close()
    return [os.path.basename(r) for r in mods]


# ---------------------------------------------------------------- driver

def build(cache=None, force=False):
    cache = cache or cache_dir()
    os.makedirs(cache, exist_ok=True)
    lockf = open(os.path.join(cache, ".lock"), "w")
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise SystemExit("vmlab: another build holds %s/.lock for too long" % cache)
            time.sleep(2)
    try:
        if not force and is_current(cache):
            log("image in %s is current" % cache)
            return read_stamp(cache)
        return _build_locked(cache)
    finally:
        lockf.close()


def _build_locked(cache):
    if os.geteuid() != 0:
        raise SystemExit("vmlab: building the image needs root (debootstrap, chroot)")
    for tool in ("debootstrap", "chroot", "dpkg-deb", "mkfs.ext4"):
        if not shutil.which(tool):
            raise SystemExit("vmlab: %s not found; apt-get install debootstrap e2fsprogs" % tool)
    t0 = time.monotonic()
    rhash = recipe_hash()
    work = os.path.join(cache, "work")
    for mp in sorted(_mounts_under(work), reverse=True):  # left by a killed build
        subprocess.run(["umount", mp], timeout=60)
    safe_rmtree(work)
    os.makedirs(work)
    root = os.path.join(work, "root")
    logpath = os.path.join(cache, "build.log")
    log("building VM lab image in %s (recipe %s, log %s)" % (cache, rhash[:12], logpath))
    with open(logpath, "w") as logf:
        mirrors = debian_mirrors()
        kpkg = build_rootfs(root, mirrors, logf)
        kdir, release = install_kernel(root, kpkg, work, logf)
        vhd_util = install_vhdutil(root)
        vmlinuz = os.path.join(kdir, "boot", "vmlinuz-" + release)
        shutil.copy2(vmlinuz, os.path.join(work, "vmlinuz"))
        log("extracting vmlinux (PVH) from vmlinuz ...")
        pvh = extract_vmlinux(vmlinuz, os.path.join(work, "vmlinux"))
        log("vmlinux PVH entry: %s" % ("yes" if pvh else "no (will boot bzImage)"))
        mods = build_initrd(root, release, os.path.join(work, "initrd.img"))
        log("initrd: busybox + %d modules" % len(mods))
        tidy_rootfs(root)
        run_step("mkfs.ext4 -d (rootfs image, %s sparse)" % ROOTFS_SIZE,
                 ["mkfs.ext4", "-q", "-F", "-L", "vmlab-root", "-d", root,
                  os.path.join(work, "rootfs.ext4"), ROOTFS_SIZE], logf, 1200)
    stamp = {
        "recipe": rhash,
        "kernel_package": kpkg,
        "kernel_release": release,
        "pvh": pvh,
        "initrd_modules": mods,
        "vhd_util": vhd_util and vhdutil_key(),
        "mirrors": mirrors,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    # Invalidate first, move artifacts in, then write the stamp: a crash leaves no stamp.
    try:
        os.unlink(os.path.join(cache, "stamp.json"))
    except FileNotFoundError:
        pass
    for name in ("rootfs.ext4", "vmlinuz", "vmlinux", "initrd.img"):
        src = os.path.join(work, name)
        if os.path.exists(src):
            os.replace(src, os.path.join(cache, name))
    tmp = os.path.join(cache, "stamp.json.tmp")
    with open(tmp, "w") as f:
        json.dump(stamp, f, indent=1)
    os.replace(tmp, os.path.join(cache, "stamp.json"))
    safe_rmtree(work)
    log("image built in %.0f s (kernel %s)" % (time.monotonic() - t0, release))
    return stamp


def ensure_built(cache=None):
    cache = cache or cache_dir()
    if is_current(cache):
        return read_stamp(cache)
    return build(cache)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="tools/vmlab/build",
                                 description="Build (once) the qemu VM lab image into the cache.")
    ap.add_argument("--force", action="store_true", help="rebuild even if the recipe is unchanged")
    ap.add_argument("--check", action="store_true",
                    help="exit 0 if the cached image is current, 1 if a build is needed")
    args = ap.parse_args(argv)
    if args.check:
        ok = is_current()
        print("current" if ok else "needs build")
        return 0 if ok else 1
    stamp = build(force=args.force)
    print(json.dumps(stamp, indent=1))
    return 0
