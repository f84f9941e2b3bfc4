"""rbdsr.secret: redaction, cephx key format, keyring parsing."""
import base64
import os
import struct

import pytest

from rbdsr.errors import ConfigError
from rbdsr.secret import (
    Secret, contains_secret, is_cephx_key, make_cephx_key, parse_keyring_text, read_keyring,
)

KEY = make_cephx_key(b"0123456789abcdef", sec=1700000000, nsec=5)


def test_secret_never_prints_itself():
    s = Secret("hunter2-password")
    assert str(s) == "<secret>"
    assert repr(s) == "<secret>"
    assert "%s" % s == "<secret>"
    assert "{}".format(s) == "<secret>"
    assert f"{s}" == "<secret>"
    assert "hunter2" not in repr([s, {"k": s}])
    assert s.reveal() == "hunter2-password"


def test_secret_in_exception_message_is_redacted():
    s = Secret("hunter2-password")
    err = ValueError("login failed with %s" % s)
    assert "hunter2" not in str(err)


def test_secret_not_picklable():
    import pickle
    with pytest.raises(TypeError):
        pickle.dumps(Secret("x" * 10))


def test_contains_secret_tracks_live_secrets():
    s = Secret("a-unique-secret-value-42")
    assert contains_secret("prefix a-unique-secret-value-42 suffix")
    assert not contains_secret("nothing here")
    del s


def test_real_cephx_key_shape():
    raw = base64.b64decode(KEY)
    assert len(KEY) == 40 and len(raw) == 28
    assert struct.unpack("<HIIH", raw[:12]) == (1, 1700000000, 5, 16)
    assert is_cephx_key(KEY)
    assert is_cephx_key(Secret(KEY))


@pytest.mark.parametrize("text", [
    "",
    "AQ",
    KEY[:-1],                     # 39 chars
    KEY + "=",                    # 41 chars
    KEY.replace("=", "A"),        # no padding
    " " + KEY,
    KEY + "\n",
    base64.b64encode(struct.pack("<HIIH", 2, 0, 0, 16) + b"k" * 16).decode(),  # wrong type
    base64.b64encode(struct.pack("<HIIH", 1, 0, 0, 15) + b"k" * 16).decode(),  # wrong length field
    base64.b64encode(b"x" * 28).decode(),
    base64.b64encode(b"x" * 30).decode(),
    "!" * 38 + "==",
    None,
    42,
])
def test_not_cephx_keys(text):
    assert not is_cephx_key(text)


def test_make_cephx_key_rejects_wrong_length():
    with pytest.raises(ValueError):
        make_cephx_key(b"short")


KEYRING = """
# comment
[client.admin]
\tkey = %s
\tcaps mon = "allow *"
[client.other]
    key=%s
""" % (KEY, make_cephx_key(b"fedcba9876543210"))


def test_parse_keyring_text():
    assert parse_keyring_text(KEYRING, "client.admin").reveal() == KEY
    assert parse_keyring_text(KEYRING, "client.other").reveal() == make_cephx_key(b"fedcba9876543210")
    assert parse_keyring_text(KEYRING, "client.nobody") is None


def test_read_keyring(tmp_path):
    path = tmp_path / "k"
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, KEYRING.encode())
    os.close(fd)
    assert read_keyring(str(path), "client.admin").reveal() == KEY
    with pytest.raises(ConfigError) as e:
        read_keyring(str(path), "client.nobody")
    assert "no key for client.nobody" in str(e.value)
    with pytest.raises(ConfigError) as e:
        read_keyring(str(tmp_path / "missing"), "client.admin")
    assert "cannot read keyring" in str(e.value)


def test_read_keyring_bad_key_not_echoed(tmp_path):
    path = tmp_path / "k"
    path.write_text("[client.admin]\nkey = notakey-but-secret\n")
    with pytest.raises(ConfigError) as e:
        read_keyring(str(path), "client.admin")
    assert "not a valid cephx key" in str(e.value)
    assert "notakey-but-secret" not in str(e.value)


@pytest.mark.parametrize("kind", ["fifo", "directory", "char-device"])
def test_read_keyring_refuses_what_is_not_a_regular_file(tmp_path, kind):
    # a FIFO used to block open() for ever; /dev/zero and directories are no keyrings either
    if kind == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    elif kind == "directory":
        path = str(tmp_path)
    else:
        path = "/dev/zero"
    with pytest.raises(ConfigError) as e:
        read_keyring(path, "client.admin")
    assert path in str(e.value)


def test_read_keyring_follows_a_symlink_to_a_regular_file(tmp_path):
    real = tmp_path / "real"
    real.write_text(KEYRING)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert read_keyring(str(link), "client.admin").reveal() == KEY
