"""A bounded, host-key-verified SSH connection (paramiko) that runs argv lists.

The host key must match the pinned SHA256 fingerprint, or (without a pin) an
entry of known_hosts; an unknown or changed key is refused, never accepted.
Every argument is shlex-quoted; no argument may carry a secret; the password
only goes into the SSH user-auth exchange.
"""
import base64
import hashlib
import hmac
import os
import select
import shlex
import socket
import time

from rbdsr.errors import AuthError, RBDError, TimeoutError_, UnreachableError
from rbdsr.proc import ProcResult, check_argv

DEFAULT_KNOWN_HOSTS = ("/root/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
MAX_OUTPUT = 64 << 20


def fingerprint(key):
    """OpenSSH's SHA256 fingerprint of a paramiko PKey: 'SHA256:<base64, no padding>'."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _known_hosts_name(host, port):
    return host if port == 22 else "[%s]:%d" % (host, port)


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
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout:
            raise UnreachableError("SSH to %s: no answer within %ss" % (self.where, timeout))
        except (OSError, socket.error) as e:
            raise UnreachableError("SSH to %s: cannot connect (%s)" % (self.where, e.strerror or e))
        try:
            t = paramiko.Transport(sock)
            t.banner_timeout = timeout
            t.handshake_timeout = timeout
            t.auth_timeout = timeout
            self._transport = t
            t.start_client(timeout=timeout)
            self._check_host_key(t.get_remote_server_key(), host_key_fp, known_hosts)
            t.auth_password(user, password.reveal())
            if not t.is_authenticated():
                raise AuthError("SSH login as %s refused" % self.where)
        except RBDError:
            self.close()
            raise
        except paramiko.AuthenticationException:
            self.close()
            raise AuthError("SSH login as %s refused (wrong user or password?)" % self.where)
        except (paramiko.SSHException, EOFError, OSError, socket.error) as e:
            self.close()
            raise UnreachableError("SSH to %s failed: %s" % (self.where, e.__class__.__name__))

    def _check_host_key(self, key, pinned, known_hosts):
        got = fingerprint(key)
        if pinned:
            if not hmac.compare_digest(got.encode(), pinned.encode()):
                raise AuthError("SSH host key of %s is %s, not the pinned %s: refusing to connect"
                                % (self.where, got, pinned))
            return
        files = [known_hosts] if known_hosts else [p for p in DEFAULT_KNOWN_HOSTS if os.path.exists(p)]
        name = _known_hosts_name(self.host, self.port)
        for path in files:
            hk = self._paramiko.HostKeys()
            try:
                hk.load(path)
            except (IOError, OSError):
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

    def run(self, argv, timeout=None):
        """Run argv on the remote host; returns ProcResult (rc -1 if the exit status is missing)."""
        timeout = self.timeout if timeout is None else timeout
        check_argv(argv)
        argv = [str(a) for a in argv]
        command = " ".join(shlex.quote(a) for a in argv)
        deadline = time.time() + timeout
        try:
            chan = self._transport.open_session(timeout=timeout)
        except (self._paramiko.SSHException, EOFError, OSError, socket.error) as e:
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
        if self._transport is not None:
            try:
                self._transport.close()
            finally:
                self._transport = None
