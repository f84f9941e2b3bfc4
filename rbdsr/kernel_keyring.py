"""Put a cephx key into the kernel keyring without any command line.

The kernel RBD client takes `key=client.<id>` in its map options and looks the
key up with request_key("ceph", "client.<id>") in the keyrings of the task that
writes to /sys/bus/rbd/add*. The "ceph" key type (registered by libceph)
parses its payload with ceph_crypto_key_decode(): the payload is the *decoded*
cephx key (the 28 raw bytes), exactly what the rbd CLI hands to add_key() after
un-base64ing the key text.

We call the add_key/keyctl system calls through ctypes (libkeyutils when
present, else libc's syscall()), so the key is never on argv and never in a
file. Callers add the key to the *thread* keyring of the thread that writes to
sysfs and invalidate it right after: the key lives only for the map write.
"""
import ctypes
import ctypes.util
import errno
import os
import platform

from rbdsr.errors import AuthError, MapError
from rbdsr.secret import cephx_key_bytes

KEY_TYPE = "ceph"

# Special keyring ids (linux/keyctl.h).
KEY_SPEC_THREAD_KEYRING = -1
KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_SESSION_KEYRING = -3

# keyctl operations (linux/keyctl.h).
KEYCTL_REVOKE = 3
KEYCTL_UNLINK = 9
KEYCTL_SEARCH = 10
KEYCTL_INVALIDATE = 21

# System call numbers, for when libkeyutils is absent.
_SYSCALLS = {
    "x86_64": {"add_key": 248, "keyctl": 250},
    "aarch64": {"add_key": 217, "keyctl": 219},
    "i386": {"add_key": 286, "keyctl": 288},
    "i686": {"add_key": 286, "keyctl": 288},
}


def description(cephx_id):
    """The key description the kernel looks up for `key=client.<id>`."""
    return "client.%s" % cephx_id


def key_payload(key):
    """The raw bytes the "ceph" key type expects: the base64-decoded cephx key
    (rbdsr.secret.cephx_key_bytes). `key` is a Secret or str. Errors never
    contain the key."""
    raw = cephx_key_bytes(key)
    if raw is None:
        raise AuthError("the cephx key is not a cephx key (base64 of a 28-byte AES key)")
    return raw


def _candidates(soname, name):
    """soname, then (only when asked for) what find_library says."""
    yield soname
    found = ctypes.util.find_library(name)
    if found and found != soname:
        yield found


class _Api(object):
    """add_key / keyctl through libkeyutils or raw syscalls."""

    def __init__(self):
        self._keyutils = None
        self._libc = None
        # the soname first: ctypes.util.find_library runs `ldconfig -p` (a process per map)
        for candidate in _candidates("libkeyutils.so.1", "keyutils"):
            try:
                lib = ctypes.CDLL(candidate, use_errno=True)
                lib.add_key  # noqa: B018 - probe the symbol
                lib.keyctl  # noqa: B018
            except (OSError, AttributeError):
                continue
            self._keyutils = lib
            self._keyutils.add_key.restype = ctypes.c_int32
            self._keyutils.add_key.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                                               ctypes.c_size_t, ctypes.c_int32]
            self._keyutils.keyctl.restype = ctypes.c_long
            break
        if self._keyutils is None:
            self._nrs = _SYSCALLS.get(platform.machine())
            if self._nrs is None:
                raise OSError(errno.ENOSYS, "no keyutils library and unknown syscall numbers")
            for candidate in _candidates("libc.so.6", "c"):
                try:
                    self._libc = ctypes.CDLL(candidate, use_errno=True)
                    break
                except OSError:
                    continue
            if self._libc is None:
                raise OSError(errno.ENOSYS, "no C library to make the keyring syscalls")
            self._libc.syscall.restype = ctypes.c_long

    def add_key(self, ktype, desc, payload, keyring):
        buf = ctypes.create_string_buffer(payload, len(payload))
        try:
            ctypes.set_errno(0)
            if self._keyutils is not None:
                serial = self._keyutils.add_key(ktype.encode(), desc.encode(), buf, len(payload), keyring)
            else:
                serial = self._libc.syscall(ctypes.c_long(self._nrs["add_key"]), ctypes.c_char_p(ktype.encode()),
                                            ctypes.c_char_p(desc.encode()), buf,
                                            ctypes.c_size_t(len(payload)), ctypes.c_int(keyring))
            if serial == -1 or serial < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            return int(serial)
        finally:
            # Do not leave a copy of the key in our heap longer than needed.
            ctypes.memset(buf, 0, len(payload))

    def keyctl(self, op, *args):
        cargs = [ctypes.c_long(a) for a in args]
        ctypes.set_errno(0)
        if self._keyutils is not None:
            res = self._keyutils.keyctl(ctypes.c_int(op), *cargs)
        else:
            res = self._libc.syscall(ctypes.c_long(self._nrs["keyctl"]), ctypes.c_long(op), *cargs)
        if res == -1:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return res


_API = None


def _api():
    global _API
    if _API is None:
        _API = _Api()
    return _API


def available():
    """True when add_key can be called at all (library or known syscall)."""
    try:
        _api()
        return True
    except OSError:
        return False


def add_ceph_key(cephx_id, key, keyring=KEY_SPEC_THREAD_KEYRING):
    """Add the cephx key of client.<cephx_id> to `keyring`; return its serial.

    Raises OSError (errno set, message without the key) when the kernel refuses,
    e.g. ENODEV when libceph is not loaded (no "ceph" key type), EDQUOT, ENOSYS.
    Raises AuthError when the key text is not base64.
    """
    payload = key_payload(key)
    return _api().add_key(KEY_TYPE, description(cephx_id), payload, keyring)


def remove_key(serial):
    """Invalidate the key (falls back to revoke); never raises."""
    for op in (KEYCTL_INVALIDATE, KEYCTL_REVOKE):
        try:
            _api().keyctl(op, serial)
            return True
        except OSError:
            continue
    return False


def search(cephx_id, keyring=KEY_SPEC_THREAD_KEYRING):
    """Serial of a "ceph" key client.<id> reachable from `keyring`, or None."""
    desc = ctypes.create_string_buffer(description(cephx_id).encode())
    ktype = ctypes.create_string_buffer(KEY_TYPE.encode())
    try:
        return _api().keyctl(KEYCTL_SEARCH, keyring, ctypes.addressof(ktype), ctypes.addressof(desc), 0)
    except OSError:
        return None


class TemporaryKey(object):
    """Context manager: the key in this thread's keyring for the block's duration.

    Use it in the very thread that writes to sysfs (the kernel searches the
    writer's thread, process and session keyrings).
    """

    def __init__(self, cephx_id, key, keyring=KEY_SPEC_THREAD_KEYRING):
        self.cephx_id = cephx_id
        self.key = key
        self.keyring = keyring
        self.serial = None

    def __enter__(self):
        try:
            self.serial = add_ceph_key(self.cephx_id, self.key, self.keyring)
        except OSError as e:
            raise MapError("cannot add the key of client.%s to the kernel keyring: %s"
                           % (self.cephx_id, os.strerror(e.errno) if e.errno else "unknown error"))
        return self

    def __exit__(self, *exc):
        if self.serial is not None:
            remove_key(self.serial)
            self.serial = None
        return False
