"""The XML-RPC call's own fields, checked before sm's SR code uses them.

XAPI hands the driver more than device-config: the command, sr_uuid, vdi_uuid
and vdi_location (sm builds lock paths, VG and LV names from them), args (sizes
that sm turns into int()), session/host refs, sm-config maps. A broken or
hostile caller can put anything there, and sm logs the whole call in SMlog once
load() returns. So load() asks `check(...)` first: each field must have the
shape XAPI gives it, and no field but chappassword may hold a secret. Messages
name the field, never its value. No sm imports.
"""
import re

from rbdsr.config import MAX_SIZE
from rbdsr.config import _field_key as field_key
from rbdsr.errors import ConfigError
from rbdsr.secret import is_cephx_key

UUID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.IGNORECASE)
_SIZE_RE = re.compile(r"\A[0-9]{1,20}\Z")
# where a cephx key could hide inside a longer value
_KEYISH_RE = re.compile(r"[A-Za-z0-9+/]{38}==")
# the fields allowed to carry a secret (the password itself, or the uuid naming one)
SECRET_FIELDS = ("chappassword",)
# passwords shorter than this are not searched for elsewhere (they would match by chance)
_MIN_SECRET_LEN = 8
# commands that act on no existing SR (sm makes up a uuid for the probe)
_NO_SR = ("sr_probe", "sr_get_driver_info")
# commands that name no existing VDI by vdi_uuid (sm generates one; introduce gives new_uuid)
_NEW_VDI = ("vdi_create", "vdi_introduce")
# size arguments: command -> (index in args, sm key when wrong)
_SIZES = {"sr_create": (0, "InvalidArg"), "vdi_create": (0, "VDISize"), "vdi_resize": (0, "VDISize"),
          "vdi_resize_online": (0, "VDISize")}


def is_uuid(value):
    return isinstance(value, str) and bool(UUID_RE.match(value))


def shown_uuid(value):
    """An sr/vdi uuid as it may be logged: itself when it is one, else a neutral word."""
    if not value:
        return "(probe)"
    return value if is_uuid(value) else "(not a uuid)"


def _holds_secret(text, secrets):
    if any(s in text for s in secrets):
        return True
    return any(is_cephx_key(m) for m in _KEYISH_RE.findall(text))


def _walk(value, path):
    """(path, text) of every string in value, map keys included."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield "a key of %s" % path, k
                for item in _walk(v, "%s.%s" % (path, k)):
                    yield item
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            for item in _walk(v, "%s[%d]" % (path, i)):
                yield item


def _secret_values(dconf):
    out = []
    for name in SECRET_FIELDS:
        v = dconf.get(name) if isinstance(dconf, dict) else None
        if isinstance(v, str) and len(v) >= _MIN_SECRET_LEN:
            out.append(v)
    return out


def check_no_stray_secret(params, dconf, extra_secrets=()):
    """ConfigError when a secret (a cephx key, or the chappassword's value) is in
    any field but chappassword: sm would log it with the call."""
    secrets = _secret_values(dconf) + [s for s in extra_secrets if s and len(s) >= _MIN_SECRET_LEN]
    for name, value in sorted(params.items(), key=lambda kv: str(kv[0])):
        if name == "device_config" and isinstance(value, dict):
            for field, fvalue in sorted(value.items(), key=lambda kv: str(kv[0])):
                if field in SECRET_FIELDS:
                    continue
                for where, text in _walk(fvalue, "device-config %s" % field):
                    if _holds_secret(text, secrets):
                        raise ConfigError("%s holds a secret (a cephx key or the password): only chappassword "
                                          "(better: chappassword_secret) may carry one" % where,
                                          key=field_key(field) if isinstance(field, str) else "InvalidArg")
                if isinstance(field, str) and _holds_secret(field, secrets):
                    raise ConfigError("a device-config key holds a secret (a cephx key or the password)")
            continue
        if name == "session_ref":
            continue  # sm masks it; XAPI's session is not ours to judge
        for where, text in _walk(value, str(name)):
            if _holds_secret(text, secrets):
                raise ConfigError("the call's %s holds a secret (a cephx key or the password)" % where)


def check_call(method, params):
    """ConfigError (with the sm key) when the call's own fields are not what XAPI sends."""
    command = params.get("command")
    if method is None:
        # sm's own SR.from_uuid (sr_health_check, tapdisk-pause): command 'nop', no method
        method = command if command == "nop" else ""
    if command != method:
        raise ConfigError("the call's command field does not match its method name", key="BadRequest")
    sr_uuid = params.get("sr_uuid")
    if method not in _NO_SR or sr_uuid not in (None, ""):
        if not is_uuid(sr_uuid):
            raise ConfigError("sr_uuid is %s, not a uuid" % _what(sr_uuid))
    if method.startswith("vdi_"):
        for field in ("vdi_uuid", "vdi_location"):
            value = params.get(field)
            if value is None and (field == "vdi_location" or method in _NEW_VDI):
                continue
            if not is_uuid(value):
                raise ConfigError("%s is %s, not a uuid" % (field, _what(value)))
        if method == "vdi_introduce" and not is_uuid(params.get("new_uuid")):
            raise ConfigError("new_uuid is %s, not a uuid" % _what(params.get("new_uuid")))
    args = params.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError("the call's args are not a list of strings")
    if method in _SIZES:
        index, key = _SIZES[method]
        if len(args) <= index:
            raise ConfigError("%s needs a size argument" % method, key=key)
        if not _SIZE_RE.match(args[index]) or int(args[index]) > MAX_SIZE:
            raise ConfigError("the size argument of %s is not a number of bytes up to %d TiB"
                              % (method, MAX_SIZE >> 40), key=key)


def _what(value):
    if value is None:
        return "missing"
    if not isinstance(value, str):
        return "a %s" % type(value).__name__
    return "%d characters long" % len(value) if value else "empty"


def check(method, params, extra_secrets=()):
    """Both checks; the secret check first, so no message can name a value
    that turns out to be a secret."""
    if not isinstance(params, dict):
        raise ConfigError("the call's parameters are not a struct", key="BadRequest")
    check_no_stray_secret(params, params.get("device_config"), extra_secrets)
    check_call(method, params)
