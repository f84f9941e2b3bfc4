"""Every SSH step is bounded by the timeout: real servers on 127.0.0.1 that
stall at each step (a TCP listener that never sends a banner, and paramiko
SSH servers that stall in authentication, in the exec request -- the session
is open, the server never answers -- or after exec). The call must fail with
the SSH layer's own error within timeout plus a margin; the outer bound here
only keeps a regression from hanging the suite."""
import socket
import threading

import pytest

paramiko = pytest.importorskip("paramiko", reason="paramiko is in both unit venvs")

from rbdsr.backends.sshconn import SSHConnection, fingerprint  # noqa: E402
from rbdsr.bounded import run_bounded  # noqa: E402
from rbdsr.errors import ConfigError, RBDError, TimeoutError_, UnreachableError  # noqa: E402
from rbdsr.secret import Secret  # noqa: E402

TIMEOUT = 2.0
OUTER = TIMEOUT + 15.0  # far above timeout + margin: reached only if a step is unbounded
PASSWORD = "stall-test-password"
HOST_KEY = paramiko.RSAKey.generate(2048)


class _Server(paramiko.ServerInterface):
    def __init__(self, stall_at, release):
        self.stall_at = stall_at
        self.release = release

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        if self.stall_at == "auth":
            self.release.wait()
        return paramiko.AUTH_SUCCESSFUL if password == PASSWORD else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel, command):
        if self.stall_at == "exec":
            self.release.wait()  # the session is open; the exec request is never answered
        return True  # "after-exec": accepted, then nothing is ever sent


class StallingServer(object):
    """One SSH (or, with stall_at='banner', bare TCP) server on 127.0.0.1."""

    def __init__(self, stall_at):
        self.stall_at = stall_at
        self.release = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.transports = []
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.release.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.stall_at == "banner":
                continue  # accept, say nothing
            t = paramiko.Transport(conn)
            t.add_server_key(HOST_KEY)
            t.start_server(server=_Server(self.stall_at, self.release))
            self.transports.append(t)

    def close(self):
        self.release.set()
        self.sock.close()
        for t in self.transports:
            t.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def server(request):
    s = StallingServer(request.param)
    yield s
    s.close()


def connect(port, timeout=TIMEOUT):
    return SSHConnection("127.0.0.1", port, "deploy", Secret(PASSWORD), timeout, host_key_fp=fingerprint(HOST_KEY))


def bounded(fn):
    """fn's own error, or AssertionError when the SSH layer did not give up in time."""
    try:
        return run_bounded(fn, OUTER, "the SSH call under test")
    except TimeoutError_ as e:
        if "the SSH call under test" in str(e):
            raise AssertionError("the SSH call was still blocked after %ss (timeout %ss)" % (OUTER, TIMEOUT))
        raise


@pytest.mark.parametrize("server", ["banner", "auth"], indirect=True)
def test_login_that_stalls_fails_within_the_timeout(server):
    with pytest.raises((TimeoutError_, UnreachableError)) as e:
        bounded(lambda: connect(server.port))
    assert PASSWORD not in str(e.value)


@pytest.mark.parametrize("server", ["exec", "after-exec"], indirect=True)
def test_session_that_stalls_fails_within_the_timeout(server):
    conn = bounded(lambda: connect(server.port))
    try:
        with pytest.raises(RBDError) as e:
            bounded(lambda: conn.run(["ceph", "fsid"], timeout=TIMEOUT))
        assert isinstance(e.value, (TimeoutError_, UnreachableError)), repr(e.value)
        assert "within" in str(e.value)
    finally:
        conn.close()


def test_ssh_host_name_lookup_is_bounded(monkeypatch):
    import time

    from rbdsr import monaddr

    def slow(*args):
        time.sleep(OUTER + 5)

    monkeypatch.setattr(monaddr.socket, "getaddrinfo", slow)
    with pytest.raises(RBDError) as e:
        bounded(lambda: SSHConnection("mon.example", 22, "deploy", Secret(PASSWORD), TIMEOUT))
    assert e.value.key == "DNSError"


def test_unresolvable_ssh_host_is_a_dns_error(monkeypatch):
    from rbdsr import monaddr

    def refuse(*args):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(monaddr.socket, "getaddrinfo", refuse)
    with pytest.raises(ConfigError) as e:
        SSHConnection("mon.example", 22, "deploy", Secret(PASSWORD), TIMEOUT)
    assert e.value.key == "DNSError"
