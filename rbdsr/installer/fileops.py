"""Crash-safe file operations: every write goes to a temp file in the same
directory, is fsynced and renamed over the target, keeping the target's mode
and owner. FAULT lets tests make a chosen write or rename fail (ENOSPC, EROFS)."""
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile

# Test hook: FAULT(op, path) is called before each 'write' and 'rename'; it may raise OSError.
FAULT = None
# Test hook: die (as a kill would) just before the N-th rename of this process.
DIE_ENV = "RBDSR_INSTALL_DIE_BEFORE_RENAME"
DIE_EXIT = 98
_renames = [0]
# Our temp files: atomic_write's mkstemp names (8 random characters) and restore_copy's link.
TEMP_SUFFIX = ".rbdsr-tmp"
RESTORE_SUFFIX = ".rbdsr-restore"
_TEMP_RE = re.compile(r"\A\..+(?:\.[a-z0-9_]{8}%s|%s)\Z" % (re.escape(TEMP_SUFFIX), re.escape(RESTORE_SUFFIX)))
# Tests that loop over hundreds of installs turn fsync off (they test logic, not durability).
DURABLE = True


def _fsync(fd):
    if DURABLE:
        os.fsync(fd)


def _fault(op, path):
    if op == "rename" and os.environ.get(DIE_ENV):
        _renames[0] += 1
        if _renames[0] == int(os.environ[DIE_ENV]):
            os._exit(DIE_EXIT)
    if FAULT is not None:
        FAULT(op, path)


def is_our_temp(name):
    """True for the name of a temp file only this module makes."""
    return bool(_TEMP_RE.match(name))


def find_temps(dirs):
    """Our temp files (regular files, never symlinks) directly in each of `dirs`:
    what a kill between a temp's creation and its rename leaves behind."""
    found = []
    for d in sorted(set(dirs)):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in sorted(names):
            path = os.path.join(d, name)
            if is_our_temp(name) and stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path)
    return found


def sweep_temps(dirs):
    """Remove our leftover temp files in `dirs`; returns their paths."""
    found = find_temps(dirs)
    for path in found:
        _unlink_quiet(path)
    return found


def sha256(data):
    """Hex sha256 of bytes, None for None (an absent file)."""
    if data is None:
        return None
    return hashlib.sha256(data).hexdigest()


def read_bytes(path):
    """File content, or None when there is no such file."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except (IOError, OSError) as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def file_meta(path):
    """(mode, uid, gid) of an existing file, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def mtime_ns(path):
    """Modification time (ns) of an existing file, or None."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _set_meta(fd_or_path, meta):
    mode, uid, gid = meta
    if isinstance(fd_or_path, int):
        os.fchmod(fd_or_path, mode)
        chown = os.fchown
    else:
        os.chmod(fd_or_path, mode)
        chown = os.chown
    try:
        chown(fd_or_path, uid, gid)
    except OSError as e:
        if e.errno != errno.EPERM:  # not root (tests): the owner stays ours
            raise


def atomic_write(path, data, meta=None):
    """Replace `path` with bytes `data` atomically.

    meta: (mode, uid, gid) for the result; default: those of the existing
    file, else 0644 and the caller's ids.
    """
    meta = meta or file_meta(path) or (0o644, os.getuid(), os.getgid())
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TEMP_SUFFIX, dir=directory)
    try:
        try:
            _fault("write", path)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            _fsync(fd)
            _set_meta(fd, meta)
        finally:
            os.close(fd)
        _fault("rename", path)
        os.rename(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    fsync_dir(directory)


def restore_copy(backup, path, meta, mtime=None):
    """Put the backup's bytes at `path` (atomically, with `meta`, and with the
    modification time `mtime` in ns when given). Uses a hard link when it can so
    a full disk does not stop a restore; falls back to a copy."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, "." + os.path.basename(path) + RESTORE_SUFFIX)
    _unlink_quiet(tmp)
    try:
        os.link(backup, tmp)
    except OSError:
        with open(backup, "rb") as f:
            atomic_write(path, f.read(), meta)
        if mtime is not None:
            os.utime(path, ns=(mtime, mtime))
        return
    try:
        _set_meta(tmp, meta)
        if mtime is not None:
            os.utime(tmp, ns=(mtime, mtime))
        _fault("rename", path)
        os.rename(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    fsync_dir(directory)


def remove(path):
    """Remove a file; True when something was removed."""
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        raise
    fsync_dir(os.path.dirname(path) or ".")
    return True


def _unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def missing_dirs(path):
    """The directories `mkdir -p path` would create, outermost first."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return list(reversed(missing))


def makedirs(path, created):
    """mkdir -p, appending each directory it creates to `created` (absolute paths)."""
    for d in missing_dirs(path):
        os.mkdir(d, 0o755)
        created.append(d)


def rmtree(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
        return True
    return False
