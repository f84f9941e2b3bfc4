"""A bounded, host-key-verified SSH connection (paramiko) that runs argv lists.

The host key must match the pinned SHA256 fingerprint, or (without a pin) an
entry of known_hosts; an unknown or changed key is refused, never accepted.
Every argument is shlex-quoted; no argument may carry a secret; the password
only goes into the SSH user-auth exchange.

Bounded: paramiko waits without a limit in places (exec_command waits for the
server's reply to the exec request; channel close, auth in some versions). So
every step -- name lookup, connect, handshake, auth, and each command from
open_session to exit status -- runs under a deadline: a watchdog timer closes
the transport when the deadline passes, which wakes every paramiko wait, and
the step fails with TimeoutError_ / UnreachableError. A server that accepts a
session and then stalls costs at most the timeout plus a small margin.
"""
import base64
import hashlib
import hmac
import select
import shlex
import socket
import threading
import time

from rbdsr import files, monaddr
from rbdsr.errors import AuthError, RBDError, TimeoutError_, UnreachableError
from rbdsr.proc import ProcResult, check_argv

DEFAULT_KNOWN_HOSTS = ("/root/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
MAX_OUTPUT = 64 << 20
MAX_KNOWN_HOSTS = 4 << 20


def fingerprint(key):
    """OpenSSH's SHA256 fingerprint of a paramiko PKey: 'SHA256:<base64, no padding>'."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _known_hosts_name(host, port):
    return host if port == 22 else "[%s]:%d" % (host, port)


class _Watchdog(object):
    """Closes `close_fn`'s transport when `timeout` seconds pass before cancel()."""

    def __init__(self, timeout, close_fn):
        self.fired = False
        self._close = close_fn
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self):
        self.fired = True
        try:
            self._close()
        except Exception:  # noqa: BLE001 - closing a broken transport: nothing more to do
            pass

    def cancel(self):
        self._timer.cancel()


class SSHConnection(object):
    def __init__(self, host, port, user, password, timeout, host_key_fp=None, known_hosts=None):
        import paramiko  # lazy: only the SSH backend needs it

        self._paramiko = paramiko
        self.host = host
        self.port = port
        self.user = user
        self.timeout = timeout
        self.where = "%s@%s" % (user, _known_hosts_name(host, port))
        self._transport = None
        self._sock = None
        deadline = time.monotonic() + timeout
        # the name lookup is bounded too (socket.create_connection's is not)
        ip = monaddr.resolve_host(host, timeout, what="ssh_host")[0]
        remaining = max(0.1, deadline - time.monotonic())
        try:
            sock = socket.create_connection((ip, port), timeout=remaining)
        except socket.timeout:
            raise UnreachableError("SSH to %s: no answer within %ss" % (self.where, timeout))
        except (OSError, socket.error) as e:
            raise UnreachableError("SSH to %s: cannot connect (%s)" % (self.where, e.strerror or e))
        self._sock = sock
        dog = _Watchdog(max(0.1, deadline - time.monotonic()), self.close)
        try:
            self._login(sock, password, timeout, host_key_fp, known_hosts)
        except BaseException:
            self.close()
            if dog.fired:  # whatever paramiko said, the cause is the deadline
                raise TimeoutError_("SSH to %s: no login within %ss" % (self.where, timeout))
            raise
        finally:
            dog.cancel()
        if dog.fired:
            self.close()
            raise TimeoutError_("SSH to %s: no login within %ss" % (self.where, timeout))

    def _login(self, sock, password, timeout, host_key_fp, known_hosts):
        paramiko = self._paramiko
        try:
            t = paramiko.Transport(sock)
            t.banner_timeout = timeout
            t.handshake_timeout = timeout
            t.auth_timeout = timeout
            self._transport = t
            t.start_client(timeout=timeout)
            self._check_host_key(t.get_remote_server_key(), host_key_fp, known_hosts)
            t.auth_password(self.user, password.reveal())
            if not t.is_authenticated():
                raise AuthError("SSH login as %s refused" % self.where)
        except paramiko.AuthenticationException as e:
            if "timeout" in str(e).lower():  # paramiko's auth_timeout: the server never answered
                raise TimeoutError_("SSH to %s: no answer to the login within %ss" % (self.where, timeout))
            raise AuthError("SSH login as %s refused (wrong user or password?)" % self.where)
        except (paramiko.SSHException, EOFError, OSError, socket.error) as e:
            raise UnreachableError("SSH to %s failed: %s" % (self.where, e.__class__.__name__))

    def _check_host_key(self, key, pinned, known_hosts):
        got = fingerprint(key)
        if pinned:
            if not hmac.compare_digest(got.encode(), pinned.encode()):
                raise AuthError("SSH host key of %s is %s, not the pinned %s: refusing to connect"
                                % (self.where, got, pinned))
            return
        paths = [known_hosts] if known_hosts else list(DEFAULT_KNOWN_HOSTS)
        name = _known_hosts_name(self.host, self.port)
        for path in paths:
            hk = self._load_known_hosts(path, missing_ok=not known_hosts)
            if hk is None:
                continue
            entry = hk.lookup(name)
            if not entry:
                continue
            known = entry.get(key.get_name())
            if known is not None and known.asbytes() == key.asbytes():
                return
            if entry:
                raise AuthError("SSH host key of %s (%s) does not match known_hosts %s: refusing to connect"
                                % (self.where, got, path))
        raise AuthError("SSH host key of %s (%s) is unknown: check it on the host and pin it with"
                        " ssh_host_key=%s, or add it to known_hosts" % (self.where, got, got))

    def _load_known_hosts(self, path, missing_ok):
        """paramiko HostKeys from a known_hosts file read as a regular file only
        (paramiko's own load() would block on a FIFO). None when missing and allowed."""
        data = files.read_regular(path, MAX_KNOWN_HOSTS, "ssh_known_hosts %s" % path, missing_ok=missing_ok)
        if data is None:
            return None
        hk = self._paramiko.HostKeys()
        from paramiko.hostkeys import HostKeyEntry
        for line in data.decode("utf-8", "replace").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                entry = HostKeyEntry.from_line(line)
            except Exception:  # noqa: BLE001 - paramiko skips lines it cannot parse too
                continue
            if entry is not None and entry.key is not None:
                for hostname in entry.hostnames:
                    hk.add(hostname, entry.key.get_name(), entry.key)
        return hk

    def run(self, argv, timeout=None):
        """Run argv on the remote host; returns ProcResult (rc -1 if the exit status is missing)."""
        timeout = self.timeout if timeout is None else timeout
        check_argv(argv)
        argv = [str(a) for a in argv]
        command = " ".join(shlex.quote(a) for a in argv)
        if self._transport is None:
            raise UnreachableError("SSH to %s: the connection is closed" % self.where)
        deadline = time.time() + timeout
        # A small margin over the read loop's own deadline, so it reports first when it can.
        dog = _Watchdog(timeout + 1.0, self.close)
        try:
            return self._run(argv, command, timeout, deadline)
        except (RBDError, self._paramiko.SSHException, EOFError, OSError, socket.error) as e:
            if dog.fired:
                self.close()
                raise TimeoutError_("%s on %s did not finish within %ss (the server stalled)"
                                    % (argv[0], self.where, timeout))
            if isinstance(e, RBDError):
                raise
            raise UnreachableError("SSH to %s: session failed (%s)" % (self.where, e.__class__.__name__))
        finally:
            dog.cancel()

    def _run(self, argv, command, timeout, deadline):
        try:
            chan = self._transport.open_session(timeout=timeout)
        except (self._paramiko.SSHException, EOFError, OSError, socket.error, AttributeError) as e:
            raise UnreachableError("SSH to %s: cannot open a session (%s)" % (self.where, e.__class__.__name__))
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            out, err = [], []
            size = 0
            while True:
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise TimeoutError_("%s on %s did not finish within %ss" % (argv[0], self.where, timeout))
                select.select([chan], [], [], min(remaining, 1.0))
                while chan.recv_ready():
                    data = chan.recv(65536)
                    out.append(data)
                    size += len(data)
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(65536)
                    err.append(data)
                    size += len(data)
                if size > MAX_OUTPUT:
                    raise RBDError("%s on %s printed more than %d bytes" % (argv[0], self.where, MAX_OUTPUT))
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready() \
                        and (chan.eof_received or chan.closed):
                    break
            rc = chan.recv_exit_status()
        except socket.timeout:
            raise TimeoutError_("%s on %s did not finish within %ss" % (argv[0], self.where, timeout))
        except (self._paramiko.SSHException, EOFError, OSError, socket.error) as e:
            raise UnreachableError("SSH to %s: session failed (%s)" % (self.where, e.__class__.__name__))
        finally:
            chan.close()
        return ProcResult(argv, rc, b"".join(out).decode("utf-8", "replace"),
                          b"".join(err).decode("utf-8", "replace"))

    def close(self):
        """Close transport and socket (also the watchdog's action: it wakes any paramiko wait)."""
        t, self._transport = self._transport, None
        sock, self._sock = self._sock, None
        if t is not None:
            t.close()
        if sock is not None:
            try:
                sock.close()
            except (OSError, socket.error):
                pass
