"""Stand-in for the XenAPI module the storage manager imports.

It serves `xapi_local()` sessions backed by a small JSON database (path in env
FAKEXAPI_DB) so that a driver run as a subprocess, as XAPI runs it, sees and
changes the same SR / PBD / host / secret / VDI records the test set up and
inspects afterwards. Calls follow XenAPI's naming: `<class>.get_<field>`,
`set_<field>`, `add_to_<field>`, `remove_from_<field>`, `get_by_uuid`,
`get_record`, `get_all`, `get_all_records`, `create`, `destroy`.
"""
import fcntl
import json
import os
import uuid as _uuid


class Failure(Exception):
    """XenAPI.Failure: details is a list of strings, first the error code."""

    def __init__(self, details):
        Exception.__init__(self, details)
        self.details = details

    def __str__(self):
        return "XenAPI.Failure(%s)" % (self.details,)


CLASSES = ("SR", "PBD", "host", "secret", "VDI", "pool", "message", "task", "VM", "SM")


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
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(db, f, indent=1, sort_keys=True)
    os.rename(tmp, path)


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
        if exc[0] is None:
            save_db(self.db)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        return False


class _Class(object):
    def __init__(self, name):
        self._name = name

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
        return dict(self._rec(load_db(), ref))

    def get_all(self):
        return list(load_db()[self._name].keys())

    def get_all_records(self):
        return dict(load_db()[self._name])

    def get_all_records_where(self, _expr):
        return self.get_all_records()

    def create(self, *args):
        if self._name == "message":
            # message.create(name, priority, class, obj_uuid, body), as sm calls it
            name, priority, cls, obj_uuid, body = args
            record = {"name": name, "priority": priority, "cls": cls, "obj_uuid": obj_uuid, "body": body}
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
            self._rec(db, ref)
            del db[self._name][ref]

    def __getattr__(self, attr):
        if attr.startswith("get_"):
            field = attr[len("get_"):]

            def getter(ref):
                db = load_db()
                rec = self._rec(db, ref)
                if self._name == "SR" and field in ("VDIs", "PBDs"):
                    # reverse references, kept by XAPI itself
                    cls = field[:-1]
                    return [r for r, v in db[cls].items() if v.get("SR") == ref]
                if field not in rec:
                    raise Failure(["MESSAGE_METHOD_UNKNOWN", "%s.%s" % (self._name, attr)])
                val = rec[field]
                return dict(val) if isinstance(val, dict) else val
            return getter
        if attr.startswith("set_"):
            field = attr[len("set_"):]

            def setter(ref, value):
                with _Locked() as db:
                    self._rec(db, ref)[field] = value
            return setter
        if attr.startswith("add_to_"):
            field = attr[len("add_to_"):]

            def adder(ref, key, value):
                with _Locked() as db:
                    m = self._rec(db, ref).setdefault(field, {})
                    if key in m:
                        raise Failure(["MAP_DUPLICATE_KEY", self._name, field, ref, key])
                    m[key] = value
            return adder
        if attr.startswith("remove_from_"):
            field = attr[len("remove_from_"):]

            def remover(ref, key):
                with _Locked() as db:
                    self._rec(db, ref).setdefault(field, {}).pop(key, None)
            return remover
        if attr.startswith("db_"):
            return getattr(self, "_" + attr)
        raise AttributeError(attr)

    def _db_introduce(self, uuid, name_label, name_description, sr_ref, vtype, sharable,
                      read_only, other_config, location, xenstore_data, sm_config, *rest):
        with _Locked() as db:
            ref = new_ref("VDI")
            db["VDI"][ref] = {"uuid": uuid, "name_label": name_label,
                              "name_description": name_description, "SR": sr_ref,
                              "type": vtype, "read_only": read_only, "location": location,
                              "sm_config": sm_config, "managed": True, "virtual_size": "0",
                              "physical_utilisation": "0", "other_config": other_config}
        return ref

    def _db_forget(self, ref):
        self.destroy(ref)


class _XenAPI(object):
    def __init__(self):
        for c in CLASSES:
            setattr(self, c, _Class(c))
        self.session = _SessionCalls()

    def login_with_password(self, uname, pwd, version=None, originator=None):
        """xapi_local() over XAPI's unix socket: root logs in without a password."""
        if uname != "root":
            raise Failure(["SESSION_AUTHENTICATION_FAILED", uname, "Authentication failure"])
        return "OpaqueRef:session-local-root"


class _SessionCalls(object):
    def logout(self):
        return None

    def get_this_host(self, _session):
        db = load_db()
        return next(iter(db["host"]), "OpaqueRef:NULL")


class _Transport(object):
    def add_extra_header(self, _key, _value):
        return None


class Session(object):
    def __init__(self, *args, **kwargs):
        self.xenapi = _XenAPI()
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
        db["host"][href] = {"uuid": str(_uuid.uuid4()), "name_label": "host%d" % i,
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
