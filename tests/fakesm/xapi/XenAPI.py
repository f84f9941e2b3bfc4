"""Stand-in for the XenAPI module the storage manager imports (one file for every tier).

It serves `xapi_local()` sessions backed by a small JSON database (path in env
FAKEXAPI_DB) so that a driver run as a subprocess, as XAPI runs it, sees and
changes the same SR / PBD / host / secret / VDI records the test set up and
inspects afterwards. Calls follow XenAPI's naming: `<class>.get_<field>`,
`set_<field>`, `add_to_<field>`, `remove_from_<field>`, `get_by_uuid`,
`get_record`, `get_all`, `get_all_records`, `get_all_records_where` (XAPI's query
language: field "name" = "value", and, or, not, parentheses), `create`, `destroy`,
`VDI.db_introduce/db_forget`, `host.call_plugin` (runs /etc/xapi.d/plugins/<name> as
XAPI does: the XML-RPC call in argv[1], the XenAPIPlugin answer on stdout; every host is
this machine), `SR.update` / `SR.scan` (run the SR's driver with sr_update / sr_scan on
the master, as XAPI does), `SR.introduce` (a record only, as XAPI's), `PBD.create` (one
PBD per SR and host; every *password_secret is duplicated into a new secret, as XAPI's
Xapi_secret.duplicate_passwds), `PBD.plug` / `PBD.unplug` (the driver's sr_attach /
sr_detach with that PBD's device-config, SRmaster on the master's, then currently_attached), `Async.<class>.<call>` (a task; SR.update runs in the background, the task's status
says when it ended), `task.cancel`.

Records have XAPI's field names; a field a record lacks reads as XAPI's default for it
(FIELDS). Errors are XAPI's: HANDLE_INVALID [class, ref], UUID_INVALID [class, uuid],
MESSAGE_METHOD_UNKNOWN [class.method] for a field the class does not have,
MAP_DUPLICATE_KEY [class, field, ref, key], UNIQUENESS_CONSTRAINT_VIOLATION [class, field,
value], XENAPI_MISSING_PLUGIN [name], SR_UUID_EXISTS [uuid], PBD_EXISTS [sr, host, pbd],
VALUE_NOT_SUPPORTED [key, value, reason], OPERATION_NOT_ALLOWED [reason],
XENAPI_PLUGIN_FAILURE [reason, stdout, stderr].
"""
import fcntl
import json
import os
import re
import subprocess
import sys
import uuid as _uuid
import xmlrpc.client


class Failure(Exception):
    """XenAPI.Failure: details is a list of strings, first the error code."""

    def __init__(self, details):
        Exception.__init__(self, details)
        self.details = details

    def __str__(self):
        return "XenAPI.Failure(%s)" % (self.details,)


NULL = "OpaqueRef:NULL"
EPOCH = "19700101T00:00:00Z"
PLUGIN_DIR = os.environ.get("FAKEXAPI_PLUGIN_DIR", "/etc/xapi.d/plugins")
SM_DIR = os.environ.get("FAKEXAPI_SM_DIR", "/opt/xensource/sm")

# XAPI's fields (those sm reads or writes) and their defaults, per class.
FIELDS = {
    "SR": {"uuid": "", "name_label": "", "name_description": "", "allowed_operations": [],
           "current_operations": {}, "VDIs": [], "PBDs": [], "virtual_allocation": "0",
           "physical_utilisation": "0", "physical_size": "0", "type": "", "content_type": "",
           "shared": False, "other_config": {}, "tags": [], "sm_config": {}, "blobs": {},
           "local_cache_enabled": False, "introduced_by": NULL, "clustered": False,
           "is_tools_sr": False},
    "VDI": {"uuid": "", "name_label": "", "name_description": "", "allowed_operations": [],
            "current_operations": {}, "SR": NULL, "VBDs": [], "crash_dumps": [],
            "virtual_size": "0", "physical_utilisation": "0", "type": "user", "sharable": False,
            "read_only": False, "other_config": {}, "storage_lock": False, "location": "",
            "managed": True, "missing": False, "parent": NULL, "xenstore_data": {},
            "sm_config": {}, "is_a_snapshot": False, "snapshot_of": NULL, "snapshots": [],
            "snapshot_time": EPOCH, "tags": [], "allow_caching": False, "on_boot": "persist",
            "metadata_of_pool": NULL, "metadata_latest": False, "is_tools_iso": False,
            "cbt_enabled": False},
    "PBD": {"uuid": "", "host": NULL, "SR": NULL, "device_config": {}, "currently_attached": False,
            "other_config": {}},
    "host": {"uuid": "", "name_label": "", "name_description": "", "address": "127.0.0.1",
             "hostname": "", "enabled": True, "other_config": {}, "PBDs": [], "resident_VMs": [],
             "software_version": {}, "license_params": {}, "ha_statefiles": [], "iscsi_iqn": "",
             "multipathing": False, "metrics": NULL},
    "secret": {"uuid": "", "value": "", "other_config": {}},
    "pool": {"uuid": "", "name_label": "", "name_description": "", "master": NULL,
             "default_SR": NULL, "other_config": {}, "ha_enabled": False, "restrictions": {}},
    "message": {"uuid": "", "name": "", "priority": "0", "cls": "", "obj_uuid": "", "timestamp": EPOCH,
                "body": ""},
    "task": {"uuid": "", "name_label": "", "name_description": "", "status": "pending",
             "progress": 0.0, "result": "", "error_info": [], "other_config": {}, "subtask_of": NULL},
    "VM": {"uuid": "", "name_label": "", "power_state": "Running", "is_control_domain": False,
           "resident_on": NULL, "VBDs": [], "other_config": {}, "domid": "0"},
    "VBD": {"uuid": "", "VM": NULL, "VDI": NULL, "device": "", "userdevice": "", "mode": "RW",
            "type": "Disk", "currently_attached": False, "other_config": {}},
    "SM": {"uuid": "", "name_label": "", "type": "", "vendor": "", "capabilities": [],
           "features": {}, "configuration": {}, "driver_filename": "", "required_cluster_stack": []},
    "host_metrics": {"uuid": "", "live": True, "memory_total": "0", "memory_free": "0"},
}
CLASSES = tuple(FIELDS)
# fields XAPI keeps itself: the records that point at a record of this class
REVERSE = {("SR", "VDIs"): ("VDI", "SR"), ("SR", "PBDs"): ("PBD", "SR"),
           ("host", "PBDs"): ("PBD", "host"), ("VDI", "VBDs"): ("VBD", "VDI"),
           ("VM", "VBDs"): ("VBD", "VM"), ("VDI", "snapshots"): ("VDI", "snapshot_of"),
           ("host", "resident_VMs"): ("VM", "resident_on")}


def db_path():
    return os.environ.get("FAKEXAPI_DB", "/tmp/fakexapi.json")


def empty_db():
    return dict((c, {}) for c in CLASSES)


def load_db(path=None):
    path = path or db_path()
    try:
        with open(path) as f:
            db = json.load(f)
    except (IOError, OSError, ValueError):
        db = empty_db()
    for c in CLASSES:
        db.setdefault(c, {})
    return db


def save_db(db, path=None):
    path = path or db_path()
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(db, f, indent=1, sort_keys=True, default=_jsonable)
    os.rename(tmp, path)


def _jsonable(v):
    if isinstance(v, xmlrpc.client.DateTime):
        return v.value
    raise TypeError("not JSON serialisable: %r" % (v,))


def new_ref(cls):
    return "OpaqueRef:%s-%s" % (cls, _uuid.uuid4())


class _Locked(object):
    """Read-modify-write of the database under a lock file."""

    def __enter__(self):
        self._fd = os.open(db_path() + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.db = load_db()
        return self.db

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                save_db(self.db)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        return False


def _full(cls, db, ref, rec):
    """The record as XAPI returns it: every field, defaults filled, reverse refs computed."""
    out = dict((k, _copy(v)) for k, v in FIELDS.get(cls, {}).items())
    out.update((k, _copy(v)) for k, v in rec.items())
    for (c, field), (other, back) in REVERSE.items():
        if c == cls:
            out[field] = [r for r, v in db.get(other, {}).items() if v.get(back) == ref]
    return out


def _copy(v):
    if isinstance(v, dict):
        return dict(v)
    if isinstance(v, list):
        return list(v)
    return v


# ---- XAPI's query language (get_all_records_where) ---------------------------------

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(=|<>)|"((?:[^"\\]|\\.)*)"|([A-Za-z_]+))')


def _tokens(expr):
    pos, out = 0, []
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise Failure(["INVALID_VALUE", "expr", expr])
        lp, rp, op, s, word = m.groups()
        out.append(("(" if lp else ")" if rp else "op" if op else "str" if s is not None else "word",
                    lp or rp or op or (s if s is not None else word)))
        pos = m.end()
    return out


def _as_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _match(expr, rec):
    toks = _tokens(expr)
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else (None, None)

    def take():
        t = peek()
        pos[0] += 1
        return t

    def primary():
        kind, val = take()
        if kind == "(":
            v = disj()
            take()
            return v
        if kind == "word" and val == "not":
            return not primary()
        if kind == "word" and val in ("true", "false"):
            return val == "true"
        if kind == "word" and val == "field":
            _, name = take()
            _, op = take()
            _, value = take()
            equal = _as_text(rec.get(name, "")) == value
            return equal if op == "=" else not equal
        raise Failure(["INVALID_VALUE", "expr", expr])

    def conj():
        v = primary()
        while peek() == ("word", "and"):
            take()
            v = primary() and v
        return v

    def disj():
        v = conj()
        while peek() == ("word", "or"):
            take()
            v = conj() or v
        return v

    return disj()


class _Class(object):
    def __init__(self, name, session):
        self._name = name
        self._session = session

    def _rec(self, db, ref):
        try:
            return db[self._name][ref]
        except KeyError:
            raise Failure(["HANDLE_INVALID", self._name, str(ref)])

    def get_by_uuid(self, uuid):
        db = load_db()
        for ref, rec in db[self._name].items():
            if rec.get("uuid") == uuid:
                return ref
        raise Failure(["UUID_INVALID", self._name, str(uuid)])

    def get_by_name_label(self, label):
        db = load_db()
        return [ref for ref, rec in db[self._name].items() if rec.get("name_label") == label]

    def get_record(self, ref):
        db = load_db()
        return _full(self._name, db, ref, self._rec(db, ref))

    def get_all(self):
        return list(load_db()[self._name].keys())

    def get_all_records(self):
        db = load_db()
        return dict((r, _full(self._name, db, r, v)) for r, v in db[self._name].items())

    def get_all_records_where(self, expr):
        return dict((r, v) for r, v in self.get_all_records().items() if _match(expr, v))

    def create(self, *args):
        if self._name == "PBD":
            return self._pbd_create(*args)
        if self._name == "message":
            # message.create(name, priority, class, obj_uuid, body), as sm calls it
            name, priority, cls, obj_uuid, body = args
            record = {"name": name, "priority": str(priority), "cls": cls, "obj_uuid": obj_uuid,
                      "body": body}
        elif self._name == "task":
            # task.create(label, description)
            record = {"name_label": args[0], "name_description": args[1] if len(args) > 1 else ""}
        else:
            (record,) = args
        with _Locked() as db:
            ref = new_ref(self._name)
            rec = dict(record)
            rec.setdefault("uuid", str(_uuid.uuid4()))
            db[self._name][ref] = rec
        return ref

    def destroy(self, ref):
        with _Locked() as db:
            rec = self._rec(db, ref)
            if self._name == "PBD":
                # XAPI's: refused while attached; the PBD's own secrets go with it
                if rec.get("currently_attached"):
                    raise Failure(["OPERATION_NOT_ALLOWED", "PBD is currently attached"])
                gone = set(v for k, v in (rec.get("device_config") or {}).items()
                           if k.endswith("password_secret"))
                for sref in [r for r, s in db["secret"].items() if s.get("uuid") in gone]:
                    del db["secret"][sref]
            del db[self._name][ref]

    def _known(self, field, method):
        if field not in FIELDS.get(self._name, {}):
            raise Failure(["MESSAGE_METHOD_UNKNOWN", "%s.%s" % (self._name, method)])

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        if attr.startswith("get_"):
            field = attr[len("get_"):]
            self._known(field, attr)

            def getter(ref):
                db = load_db()
                full = _full(self._name, db, ref, self._rec(db, ref))
                if field not in full:
                    raise Failure(["MESSAGE_METHOD_UNKNOWN", "%s.%s" % (self._name, attr)])
                return full[field]
            return getter
        if attr.startswith("set_"):
            field = attr[len("set_"):]
            self._known(field, attr)

            def setter(ref, value):
                with _Locked() as db:
                    self._rec(db, ref)[field] = value
            return setter
        if attr.startswith("add_to_"):
            field = attr[len("add_to_"):]
            self._known(field, attr)

            def adder(ref, key, value):
                with _Locked() as db:
                    rec = self._rec(db, ref)
                    m = rec.setdefault(field, {})
                    if key in m:
                        raise Failure(["MAP_DUPLICATE_KEY", self._name, field, ref, key])
                    m[key] = value
            return adder
        if attr.startswith("remove_from_"):
            field = attr[len("remove_from_"):]
            self._known(field, attr)

            def remover(ref, key):
                with _Locked() as db:
                    self._rec(db, ref).setdefault(field, {}).pop(key, None)
            return remover
        if (self._name, attr) in (("VDI", "db_introduce"), ("VDI", "db_forget"), ("host", "call_plugin"),
                                  ("SR", "update"), ("SR", "scan"), ("SR", "introduce"), ("PBD", "plug"),
                                  ("PBD", "unplug"), ("task", "cancel")):
            return getattr(self, "_" + attr)
        raise Failure(["MESSAGE_METHOD_UNKNOWN", "%s.%s" % (self._name, attr)])

    def _db_introduce(self, uuid, name_label, name_description, sr_ref, vtype, sharable,
                      read_only, other_config, location, xenstore_data, sm_config, *rest):
        # rest: managed, virtual_size, physical_utilisation, metadata_of_pool, is_a_snapshot,
        # snapshot_time, snapshot_of, cbt_enabled (XAPI's VDI.db_introduce)
        names = ("managed", "virtual_size", "physical_utilisation", "metadata_of_pool",
                 "is_a_snapshot", "snapshot_time", "snapshot_of", "cbt_enabled")
        with _Locked() as db:
            if any(v.get("uuid") == uuid for v in db["VDI"].values()):
                raise Failure(["UNIQUENESS_CONSTRAINT_VIOLATION", "VDI", "uuid", uuid])
            ref = new_ref("VDI")
            rec = {"uuid": uuid, "name_label": name_label, "name_description": name_description,
                   "SR": sr_ref, "type": vtype, "sharable": sharable, "read_only": read_only,
                   "other_config": dict(other_config or {}), "location": location,
                   "xenstore_data": dict(xenstore_data or {}), "sm_config": dict(sm_config or {})}
            for k, v in zip(names, rest):
                rec[k] = _jsonable(v) if isinstance(v, xmlrpc.client.DateTime) else v
            db["VDI"][ref] = rec
        return ref

    def _db_forget(self, ref):
        self.destroy(ref)

    def _call_plugin(self, host_ref, plugin, fn, args):
        """host.call_plugin: XAPI runs the plugin with the XML-RPC call (session, args) in
        argv[1] and returns the string the plugin answers."""
        self._rec(load_db(), host_ref)
        path = os.path.join(PLUGIN_DIR, plugin)
        if not os.access(path, os.X_OK):
            raise Failure(["XENAPI_MISSING_PLUGIN", plugin])
        call = xmlrpc.client.dumps((self._session.ref, dict(args)), fn)
        p = subprocess.Popen([path, call], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        out, err = p.communicate(timeout=600)
        try:
            (answer,), _ = xmlrpc.client.loads(out)
        except Exception:  # noqa: BLE001 - the plugin's own words go back, as XAPI does
            raise Failure(["XENAPI_PLUGIN_FAILURE", "no XML-RPC answer", out, err])
        if answer.get("Status") != "Success":
            raise Failure(list(answer.get("ErrorDescription") or ["XENAPI_PLUGIN_FAILURE", out, err]))
        return answer.get("Value")

    def _update(self, sr_ref):
        """SR.update: XAPI runs the SR's driver with sr_update on the pool master."""
        return _run_driver("sr_update", sr_ref, self._session.ref)

    def _scan(self, sr_ref):
        """SR.scan: XAPI runs the SR's driver with sr_scan on the pool master."""
        _run_driver("sr_scan", sr_ref, self._session.ref)

    def _introduce(self, uuid, name_label, name_description, sr_type, content_type, shared, sm_config):
        """SR.introduce: a record for an SR that exists on its storage; no driver call
        (XAPI's: sizes -1 until a scan, uuid "" gets a new one)."""
        uuid = uuid or str(_uuid.uuid4())
        with _Locked() as db:
            if any(v.get("uuid") == uuid for v in db["SR"].values()):
                raise Failure(["SR_UUID_EXISTS", uuid])
            ref = new_ref("SR")
            db["SR"][ref] = {"uuid": uuid, "name_label": name_label, "name_description": name_description,
                             "type": sr_type.lower(), "content_type": content_type, "shared": bool(shared),
                             "sm_config": dict(sm_config or {}), "other_config": {},
                             "virtual_allocation": "0", "physical_size": "-1", "physical_utilisation": "-1"}
        return ref

    def _pbd_create(self, record):
        """PBD.create as XAPI's Xapi_pbd.create_common: one PBD per (SR, host), no SRmaster
        key, each *password_secret copied into a new secret (every PBD owns its own),
        other_config not taken."""
        record = dict(record)
        dconf = dict(record.get("device_config") or {})
        with _Locked() as db:
            sr, host = record.get("SR"), record.get("host")
            if sr not in db["SR"]:
                raise Failure(["HANDLE_INVALID", "SR", str(sr)])
            if host not in db["host"]:
                raise Failure(["HANDLE_INVALID", "host", str(host)])
            for ref, pbd in db["PBD"].items():
                if pbd.get("SR") == sr and pbd.get("host") == host:
                    raise Failure(["PBD_EXISTS", sr, host, ref])
            if "SRmaster" in dconf:
                raise Failure(["VALUE_NOT_SUPPORTED", "SRmaster", str(dconf["SRmaster"]),
                               "This key is for internal use only"])
            for k, v in sorted(dconf.items()):
                if k.endswith("password_secret"):
                    old = [s for s in db["secret"].values() if s.get("uuid") == v]
                    if not old:
                        raise Failure(["UUID_INVALID", "secret", str(v)])
                    dconf[k] = str(_uuid.uuid4())
                    db["secret"][new_ref("secret")] = {"uuid": dconf[k], "value": old[0].get("value", ""),
                                                       "other_config": {}}
            ref = new_ref("PBD")
            db["PBD"][ref] = {"uuid": str(_uuid.uuid4()), "SR": sr, "host": host, "device_config": dconf,
                              "currently_attached": False, "other_config": {}}
        return ref

    def _plug(self, pbd_ref):
        """PBD.plug: the driver's sr_attach on the PBD's host (this machine), then attached."""
        pbd = self._rec(load_db(), pbd_ref)
        if not pbd.get("currently_attached"):
            _run_driver("sr_attach", pbd["SR"], self._session.ref, pbd_ref=pbd_ref)
            with _Locked() as db:
                self._rec(db, pbd_ref)["currently_attached"] = True

    def _unplug(self, pbd_ref):
        pbd = self._rec(load_db(), pbd_ref)
        if pbd.get("currently_attached"):
            _run_driver("sr_detach", pbd["SR"], self._session.ref, pbd_ref=pbd_ref)
            with _Locked() as db:
                self._rec(db, pbd_ref)["currently_attached"] = False

    def _cancel(self, task_ref):
        with _Locked() as db:
            rec = self._rec(db, task_ref)
            if rec.get("status", "pending") == "pending":
                rec["status"] = "cancelled"


def _driver_for(sr_type):
    """The driver XAPI runs for an SR type: /opt/xensource/sm/<Type>SR (lvmoiscsi -> LVMoISCSISR)."""
    sm_dir = os.environ.get("FAKEXAPI_SM_DIR", SM_DIR)
    for name in sorted(os.listdir(sm_dir)) if os.path.isdir(sm_dir) else []:
        if name.lower() == sr_type.lower() + "sr":
            return os.path.join(sm_dir, name)
    raise Failure(["SR_UNKNOWN_DRIVER", sr_type])


def _run_driver(command, sr_ref, session_ref, pbd_ref=None):
    """Run an SR-level command of the SR's driver, as XAPI does: on the master with its
    PBD (SRmaster), or for pbd_ref with that PBD (SRmaster when its host is the master)."""
    db = load_db()
    sr = db["SR"].get(sr_ref)
    if sr is None:
        raise Failure(["HANDLE_INVALID", "SR", sr_ref])
    master = next((p["master"] for p in db["pool"].values()), None) or next(iter(db["host"]), NULL)
    if pbd_ref is None:
        pbd = next((p for p in db["PBD"].values() if p["SR"] == sr_ref and p["host"] == master), None)
    else:
        pbd = db["PBD"].get(pbd_ref)
    if pbd is None:
        raise Failure(["SR_NO_PBDS", sr_ref])
    dconf = dict(pbd.get("device_config") or {})
    if pbd["host"] == master:
        dconf["SRmaster"] = "true"
    params = {"command": command, "device_config": dconf, "session_ref": session_ref,
              "sr_ref": sr_ref, "sr_uuid": sr["uuid"], "host_ref": pbd["host"], "args": []}
    p = subprocess.Popen([sys.executable, _driver_for(sr["type"]),
                          xmlrpc.client.dumps((params,), command)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    out, err = p.communicate(timeout=900)
    try:
        (value,), _ = xmlrpc.client.loads(out)
    except xmlrpc.client.Fault as f:
        raise Failure(["SR_BACKEND_FAILURE_%d" % f.faultCode, "", f.faultString])
    except Exception:  # noqa: BLE001
        raise Failure(["SR_BACKEND_FAILURE", "", "no answer from the driver", out + err])
    return value


class _Async(object):
    """session.xenapi.Async.<class>.<call>(...) -> a task ref."""

    def __init__(self, session):
        self._session = session
        for c in CLASSES:
            setattr(self, c, _AsyncClass(c, session))


class _AsyncClass(object):
    def __init__(self, name, session):
        self._name = name
        self._session = session

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        call = getattr(_Class(self._name, self._session), attr)

        def start(*args):
            task = _Class("task", self._session).create("Async.%s.%s" % (self._name, attr), "")
            if (self._name, attr) == ("SR", "update"):
                # XAPI runs it while the caller goes on (sm's GC polls the task meanwhile)
                subprocess.Popen([sys.executable, os.path.abspath(__file__), "__task", task,
                                  self._session.ref, "SR.update"] + [str(a) for a in args],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            else:
                _finish_task(task, call, args)
            return task
        return start


def _finish_task(task, call, args):
    try:
        result, status, error = call(*args), "success", []
    except Failure as e:
        result, status, error = "", "failure", list(e.details)
    with _Locked() as db:
        rec = db["task"].get(task)
        if rec is not None and rec.get("status", "pending") == "pending":
            rec.update(status=status, result=str(result or ""), error_info=error, progress=1.0)


class _XenAPI(object):
    def __init__(self, session):
        self._session_obj = session
        for c in CLASSES:
            setattr(self, c, _Class(c, session))
        self.session = _SessionCalls()
        self.Async = _Async(session)

    def login_with_password(self, uname="root", *_args):
        # dom0 tools log in as root (no password over XAPI's local socket)
        if uname != "root":
            raise Failure(["SESSION_AUTHENTICATION_FAILED", uname, "Authentication failure"])
        self._session_obj.ref = "OpaqueRef:session-%s" % _uuid.uuid4()
        self._session_obj._session = self._session_obj.ref
        return self._session_obj.ref

    def slave_local_login_with_password(self, *args):
        return self.login_with_password(*args)

    def logout(self):
        return None


def this_host_uuid():
    """The host this process runs on, as XAPI knows it: the inventory's INSTALLATION_UUID."""
    try:
        with open("/etc/xensource-inventory") as f:
            for line in f:
                if line.startswith("INSTALLATION_UUID"):
                    return line.split("=", 1)[1].strip().strip("'\"")
    except (IOError, OSError):
        pass
    return None


class _SessionCalls(object):
    def logout(self, *_args):
        return None

    def get_this_host(self, _session):
        db = load_db()
        uuid = this_host_uuid()
        for ref, rec in db["host"].items():
            if rec.get("uuid") == uuid:
                return ref
        return next(iter(db["host"]), NULL)


class _Transport(object):
    def add_extra_header(self, _key, _value):
        return None


class Session(object):
    def __init__(self, *args, **kwargs):
        self.ref = "OpaqueRef:session-0"
        self.xenapi = _XenAPI(self)
        self._session = None
        self.transport = _Transport()

    def logout(self):
        return None


def xapi_local():
    return Session()


# ---- helpers for tests: seed the database -------------------------------------

def seed(path, sr_uuid=None, device_config=None, secrets=None, sm_config=None,
         host_other_config=None, sr_type="lvmoiscsi", extra_hosts=0):
    """Create a database with one host (plus `extra_hosts`), one SR with a PBD
    per host (when sr_uuid is given) and the given secrets. Returns a dict of refs."""
    db = empty_db()
    refs = {"hosts": [], "pbds": [], "secrets": {}}
    for i in range(1 + extra_hosts):
        href = new_ref("host")
        mref = new_ref("host_metrics")
        db["host_metrics"][mref] = {"uuid": str(_uuid.uuid4()), "live": True}
        db["host"][href] = {"uuid": str(_uuid.uuid4()), "name_label": "host%d" % i,
                            "hostname": "host%d" % i, "metrics": mref,
                            "other_config": dict(host_other_config or {})}
        refs["hosts"].append(href)
    for value in (secrets or []):
        sref = new_ref("secret")
        suuid = str(_uuid.uuid4())
        db["secret"][sref] = {"uuid": suuid, "value": value}
        refs["secrets"][value] = suuid
    if sr_uuid:
        sref = new_ref("SR")
        db["SR"][sref] = {"uuid": sr_uuid, "name_label": "rbd sr", "name_description": "",
                          "type": sr_type, "sm_config": dict(sm_config or {}),
                          "other_config": {}, "virtual_allocation": "0",
                          "physical_size": "0", "physical_utilisation": "0",
                          "shared": True}
        refs["sr"] = sref
        for href in refs["hosts"]:
            pref = new_ref("PBD")
            db["PBD"][pref] = {"uuid": str(_uuid.uuid4()), "SR": sref, "host": href,
                               "device_config": dict(device_config or {}),
                               "other_config": {}, "currently_attached": False}
            refs["pbds"].append(pref)
    save_db(db, path)
    return refs


if __name__ == "__main__":
    # the background half of an Async call: __task <task ref> <session ref> <Class.call> args...
    if sys.argv[1:2] == ["__task"]:
        _task, _sref, _what = sys.argv[2:5]
        _sess = Session()
        _sess.ref = _sref
        _cls, _call = _what.split(".")
        _finish_task(_task, getattr(_Class(_cls, _sess), _call), sys.argv[5:])
