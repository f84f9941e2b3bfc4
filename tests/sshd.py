"""A real OpenSSH sshd on 127.0.0.1 for the SSH backend tests.

It runs Debian's /usr/sbin/sshd with its own config, host key and pid file in
a private temp dir, password logins only, for one throwaway user who may run
/usr/bin/ceph and /usr/bin/rbd (nothing else) through `sudo -n`. sshd hands
the session CEPH_CONF (the dev cluster's conf) and sudo keeps it, so the CLI on
the "monitor" talks to the dev cluster. The host key fingerprint is exposed
for pinning; `stop()` removes the user and the sudoers rule again.

Use the `sshd` fixture (session scope, needs `ceph_cluster`), or SSHD(...)
directly (bench).
"""
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

SSHD_BIN = "/usr/sbin/sshd"
SUDOERS_DIR = "/etc/sudoers.d"


def _run(argv, input=None, timeout=30):
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, check=True)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SSHD(object):
    host = "127.0.0.1"

    def __init__(self, ceph_conf, sudo_tools=("/usr/bin/ceph", "/usr/bin/rbd")):
        self.ceph_conf = ceph_conf
        self.sudo_tools = sudo_tools
        self.user = "rbdsrt%s" % secrets.token_hex(3)
        self.password = secrets.token_urlsafe(18)
        self.dir = None
        self.port = None
        self.fingerprint = None
        self.known_hosts = None
        self.sudoers = None
        self.proc = None
        self._user_made = False

    def start(self, timeout=30):
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout):
        self.dir = tempfile.mkdtemp(prefix="rbdsr-sshd-")
        os.chmod(self.dir, 0o711)  # the test user's home lives inside
        key = os.path.join(self.dir, "ssh_host_ed25519_key")
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rbdsr-test", "-f", key])
        out = _run(["ssh-keygen", "-l", "-E", "sha256", "-f", key + ".pub"]).stdout
        self.fingerprint = out.split()[1]
        with open(key + ".pub") as f:
            keytype, blob = f.read().split()[:2]

        home = os.path.join(self.dir, "home")
        _run(["useradd", "--no-user-group", "--gid", "users", "--home-dir", home, "--create-home",
              "--shell", "/bin/sh", self.user])
        self._user_made = True
        _run(["chpasswd"], input="%s:%s\n" % (self.user, self.password))  # stdin, not argv

        self.sudoers = os.path.join(SUDOERS_DIR, "rbdsrtest_%s" % self.user)
        rule = ('Defaults:%s env_keep += "CEPH_CONF"\n%s ALL=(root) NOPASSWD: %s\n'
                % (self.user, self.user, ", ".join(self.sudo_tools)))
        fd = os.open(self.sudoers, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
        with os.fdopen(fd, "w") as f:
            f.write(rule)
        _run(["visudo", "-c", "-q", "-f", self.sudoers])

        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.port = _free_port()
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write("[%s]:%d %s %s\n" % (self.host, self.port, keytype, blob))
        conf = os.path.join(self.dir, "sshd_config")
        with open(conf, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port,
                "ListenAddress %s" % self.host,
                "HostKey %s" % key,
                "PidFile %s" % os.path.join(self.dir, "sshd.pid"),
                "UsePAM no",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication no",
                "PermitRootLogin no",
                "AllowUsers %s" % self.user,
                "StrictModes no",
                "MaxSessions 100",
                "MaxStartups 100:30:200",
                "SetEnv CEPH_CONF=%s" % self.ceph_conf,
                "",
            ]))
        self.log = os.path.join(self.dir, "sshd.log")
        logf = open(self.log, "w")
        self.proc = subprocess.Popen([SSHD_BIN, "-D", "-e", "-f", conf], stdout=logf, stderr=logf)
        logf.close()
        deadline = time.time() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-2.0"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                with open(self.log) as f:
                    raise RuntimeError("sshd did not start: %s" % f.read()[-2000:])
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        if self.sudoers and os.path.exists(self.sudoers):
            os.unlink(self.sudoers)
        if self._user_made:
            # the user's sessions are gone with sshd; remove it and its home
            subprocess.run(["userdel", "--force", "--remove", self.user], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
            self._user_made = False
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def dconf(self, cluster, pool, **extra):
        """device-config for auth=ssh through this sshd, host key pinned."""
        d = {"target": cluster.mon_addr, "port": "6789", "targetIQN": pool, "auth": "ssh",
             "chapuser": self.user, "chappassword": self.password, "ssh_host": self.host,
             "ssh_port": str(self.port), "ssh_host_key": self.fingerprint, "timeout": "20"}
        d.update(extra)
        return d


try:
    import pytest
except ImportError:  # used by the bench without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def sshd(ceph_cluster):
        server = SSHD(ceph_cluster.conf_path).start()
        yield server
        server.stop()
