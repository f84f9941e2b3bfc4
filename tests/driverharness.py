"""Run the driver the way XAPI does: a subprocess executing the SR's driver
script with the XML-RPC <methodCall> as argv[1], reading the <methodResponse>
(or fault) from stdout and the wizard XML from stderr.

An `SMTree` is one sm stand-in tree (flat or package layout, from
tests/fakesm) -- or a real sm tree -- with the RBDSR hook inserted by the
installer's own hook code, a JSON-backed XAPI, its own SMlog file and lock
directory. `tree.run(call)` goes through sm's LVMoISCSISR script and the hook;
`tree.run(call, via="direct")` executes RBDSR.py itself.
"""
import os
import subprocess
import sys
import uuid
import xmlrpc.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKESM = os.path.join(ROOT, "tests", "fakesm")
XAPI_STUB = os.path.join(FAKESM, "xapi")
sys.path.insert(0, FAKESM) if FAKESM not in sys.path else None
sys.path.insert(0, XAPI_STUB) if XAPI_STUB not in sys.path else None

import mkpkg  # noqa: E402  (tests/fakesm)
import XenAPI  # noqa: E402  (the stub, for seeding and inspecting the XAPI database)

SESSION_REF = "OpaqueRef:session-0"



def edited(base, changes):
    """base with changes applied: a value of None removes that key (a missing field)."""
    d = dict(base)
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d

def method_call(command, device_config, sr_uuid=None, sr_ref=None, host_ref=None, args=None,
                session_ref=SESSION_REF, sr_sm_config=None, vdi_uuid=None, vdi_ref=None,
                extra=None):
    """The XML-RPC call XAPI would pass in argv[1]."""
    params = {"command": command, "device_config": dict(device_config),
              "args": [str(a) for a in (args or [])]}
    if session_ref is not None:
        params["session_ref"] = session_ref
    if host_ref is not None:
        params["host_ref"] = host_ref
    if sr_uuid is not None:
        params["sr_uuid"] = sr_uuid
    if sr_ref is not None:
        params["sr_ref"] = sr_ref
    if command == "sr_probe":
        params["sr_sm_config"] = dict(sr_sm_config or {})
    if vdi_uuid is not None:
        params["vdi_uuid"] = vdi_uuid
        params["vdi_location"] = vdi_uuid
    if vdi_ref is not None:
        params["vdi_ref"] = vdi_ref
    params.update(extra or {})
    return xmlrpc.client.dumps((params,), command)


class Result(object):
    """What one driver run produced."""

    def __init__(self, argv, rc, stdout, stderr, smlog):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.smlog = smlog
        self.value = None
        self.fault_code = None
        self.fault_string = None
        self.parse_error = None
        try:
            (self.value,), _ = xmlrpc.client.loads(stdout.strip())
        except xmlrpc.client.Fault as f:
            self.fault_code = f.faultCode
            self.fault_string = f.faultString
        except Exception as e:  # noqa: BLE001 - reported by the asserts
            self.parse_error = "%s: %s" % (type(e).__name__, e)

    @property
    def ok(self):
        return self.fault_code is None and self.parse_error is None

    def __repr__(self):
        return ("Result(rc=%r, value=%r, fault=%r %r, parse_error=%r,\n stdout=%r,\n stderr=%r)"
                % (self.rc, self.value, self.fault_code, self.fault_string, self.parse_error,
                   self.stdout[-2000:], self.stderr[-2000:]))


class SMTree(object):
    """An sm tree to run the driver in, with its XAPI database and SMlog."""

    def __init__(self, workdir, layout="flat", sm_src=None, hook=True, python=None):
        self.workdir = workdir
        self.layout = layout
        self.python = python or sys.executable
        os.makedirs(workdir, exist_ok=True)
        tree = os.path.join(workdir, "sm-" + layout)
        if sm_src:
            self.pythonpath, self.script = self._real_tree(sm_src, tree, layout)
        elif layout == "flat":
            self.pythonpath, self.script = mkpkg.build_flat(tree)
        elif layout == "package":
            self.pythonpath, self.script = mkpkg.build_pkg(tree)
        else:
            raise ValueError(layout)
        self.extra_path = [XAPI_STUB]
        self.smlog = os.path.join(workdir, "SMlog")
        self.db = os.path.join(workdir, "xapi.json")
        self.lockdir = os.path.join(workdir, "locks")
        os.makedirs(self.lockdir, exist_ok=True)
        if hook:
            self.hook()

    @staticmethod
    def _real_tree(sm_src, tree, layout):
        raise NotImplementedError("real sm trees are set up by tests/sm")

    def hook_file(self):
        if self.layout == "flat":
            return os.path.join(self.pythonpath, "LVHDoISCSISR.py")
        return os.path.join(self.pythonpath, "sm", "drivers", "LVHDoISCSISR.py")

    def hook(self):
        """Insert the RBDSR hook with the installer's own hook code."""
        from rbdsr.installer import hook as hookmod
        from rbdsr.version import read_version
        path = self.hook_file()
        with open(path) as f:
            text = f.read()
        spec = hookmod.load_spec()
        with open(path, "w") as f:
            f.write(hookmod.apply(text, spec, read_version(), where=path))

    def env(self, extra=None):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([self.pythonpath] + self.extra_path + [ROOT])
        env["SMLOG"] = self.smlog
        env["FAKEXAPI_DB"] = self.db
        env["FAKESM_LOCKDIR"] = self.lockdir
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra or {})
        return env

    def read_smlog(self):
        try:
            with open(self.smlog) as f:
                return f.read()
        except IOError:
            return ""

    def run(self, call, via="hook", timeout=180, env=None):
        """Run one call; returns Result (smlog = the SMlog lines this run added)."""
        before = len(self.read_smlog())
        script = self.script if via == "hook" else os.path.join(ROOT, "RBDSR.py")
        argv = [self.python, script, call]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, env=self.env(env), cwd=self.workdir)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError("driver did not answer within %ds:\n%s\n%s" % (timeout, out, err))
        return Result(argv, proc.returncode, out, err, self.read_smlog()[before:])

    # -- XAPI database ------------------------------------------------------

    def seed(self, sr_uuid=None, device_config=None, secrets=None, extra_hosts=0, sm_config=None):
        """A fresh XAPI database; returns its refs (hosts, pbds, sr, secrets{value: uuid})."""
        return XenAPI.seed(self.db, sr_uuid=sr_uuid, device_config=device_config, secrets=secrets,
                           extra_hosts=extra_hosts, sm_config=sm_config)

    def xapi(self):
        os.environ["FAKEXAPI_DB"] = self.db
        return XenAPI.load_db(self.db)


def new_uuid():
    return str(uuid.uuid4())
