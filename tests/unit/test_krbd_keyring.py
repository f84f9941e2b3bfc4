"""The kernel keyring payload and the add_key call (real syscalls on this kernel)."""
import base64
import errno
import threading

import pytest

from rbdsr import kernel_keyring
from rbdsr.errors import AuthError, MapError
from rbdsr.secret import Secret, make_cephx_key

KEY = make_cephx_key(bytes(range(16)), sec=1234, nsec=5)


def test_payload_is_the_decoded_cephx_key():
    raw = kernel_keyring.key_payload(Secret(KEY))
    assert raw == base64.b64decode(KEY)
    assert len(raw) == 28 and raw[:2] == b"\x01\x00"
    assert kernel_keyring.key_payload(KEY) == raw


@pytest.mark.parametrize("bad", ["", "not base64!", "abc"])
def test_bad_key_text_is_an_auth_error_without_the_text(bad):
    with pytest.raises(AuthError) as e:
        kernel_keyring.key_payload(Secret(bad) if bad else bad)
    if bad:
        assert bad not in str(e.value)


def test_description_matches_the_key_option():
    assert kernel_keyring.description("admin") == "client.admin"


def test_add_key_reaches_the_kernel():
    """On a kernel with libceph the key is added (and removed); without it the
    kernel answers ENODEV ("ceph" key type unknown) -- either way the syscall ran
    and the error text holds no key."""
    assert kernel_keyring.available()
    box = {}

    def in_thread():
        try:
            serial = kernel_keyring.add_ceph_key("rbdsr-unit", Secret(KEY))
            box["found"] = kernel_keyring.search("rbdsr-unit") == serial
            box["removed"] = kernel_keyring.remove_key(serial)
        except OSError as e:
            box["errno"] = e.errno
            box["text"] = str(e)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(10)
    if "errno" in box:
        assert box["errno"] in (errno.ENODEV, errno.EPERM, errno.ENOSYS, errno.EACCES), box
        assert KEY not in box["text"]
    else:
        assert box["found"] and box["removed"]


def test_temporary_key_errors_are_map_errors_without_key():
    if kernel_keyring.search("rbdsr-unit") is not None:
        pytest.skip("a key of that name is visible already")
    try:
        with kernel_keyring.TemporaryKey("rbdsr-unit", Secret(KEY)) as tk:
            assert tk.serial
    except MapError as e:
        assert KEY not in str(e) and "client.rbdsr-unit" in str(e)
