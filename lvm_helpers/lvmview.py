"""Would LVM see an RBD device? Judged from LVM's own answer (lvmconfig
output), evaluated the way lvm2 2.02/2.03 do it (pure functions, no I/O).

- parse_section(out): `lvmconfig --type full devices` output -> {key: value}
  (value: str, int, float or list of them);
- rbd_problems(devices, udev_names, driver_names): what stops LVM from seeing
  an RBD device with those names: no "rbd" in devices/types, no name (or not
  the driver's path, which sm hands to pvcreate/vgcreate) among those LVM
  scans, or global_filter / filter rejecting it.

Filter semantics (lvm.conf: "if any path name matches an 'a' pattern before an
'r' pattern, the device is accepted; if all the path names match an 'r'
pattern first, it is rejected; no match at all: accepted"), over the names
LVM scanned.
"""
import re

_TOKEN_RE = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<p>[\[\],]))', re.S)
_BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def parse_value(text):
    """One lvmconfig value: "str", 12, 1.5 or [ ... ] of those."""
    pos, items, in_list = 0, [], False
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ValueError("cannot read lvmconfig value %r" % text)
        pos = m.end()
        if m.group("p") == "[":
            in_list = True
        elif m.group("str") is not None:
            items.append(re.sub(r"\\(.)", r"\1", m.group("str")[1:-1]))
        elif m.group("num") is not None:
            num = m.group("num")
            items.append(float(num) if "." in num else int(num))
    if in_list:
        return items
    if len(items) != 1:
        raise ValueError("cannot read lvmconfig value %r" % text)
    return items[0]


def parse_section(out):
    """{key: value} of the settings lvmconfig printed (section lines skipped)."""
    values = {}
    for line in out.splitlines():
        line = line.strip()
        if not line or line.endswith("{") or line == "}":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError("cannot read lvmconfig line %r" % line)
        values[key.strip()] = parse_value(value)
    return values


def as_list(value):
    """lvmconfig prints a one-element array as a scalar."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def type_names(devices):
    """The device type names of devices/types (name, max partitions pairs)."""
    return [t for t in as_list(devices.get("types"))[0::2] if isinstance(t, str)]


def lvm_regex(body):
    """An lvm2 filter regex as a Python regex: braces are literal in lvm2, and
    a backslash before a letter or digit just quotes it."""
    out, i, in_class = [], 0, False
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(re.escape(body[i + 1]))
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            if body[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if body[i + 1:i + 2] == "]":
                out.append("\\]")
                i += 1
        elif c in "{}":
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return re.compile("".join(out))


def parse_pattern(pattern):
    """'a|re|' -> (True, compiled); ValueError when lvm2 would refuse it."""
    if len(pattern) < 3 or pattern[0] not in "ar":
        raise ValueError("pattern %r does not start with 'a' or 'r' and a separator" % pattern)
    sep = pattern[1]
    if pattern[-1] != _BRACKETS.get(sep, sep):
        raise ValueError("pattern %r does not end with its separator" % pattern)
    try:
        return pattern[0] == "a", lvm_regex(pattern[2:-1])
    except re.error as e:
        raise ValueError("pattern %r: %s" % (pattern, e))


def filter_verdict(patterns, names):
    """(accepted, why): lvm2's regex filter over all of a device's names."""
    compiled = [(p,) + parse_pattern(p) for p in patterns]
    rejected = None
    for name in names:
        for text, accept, rx in compiled:
            if rx.search(name):
                if accept:
                    return True, "%s accepts %s" % (text, name)
                rejected = rejected or "%s rejects %s" % (text, name)
                break
    if rejected:
        return False, rejected
    return True, "no pattern matches"


def under(path, directory):
    d = directory.rstrip("/") or "/"
    return path == d or path.startswith(d if d == "/" else d + "/")


def scanned_names(devices, udev_names, other_names=()):
    """The names LVM finds for a device: when its device list comes from udev
    (obtain_device_list_from_udev = 1) the names udev made; else every name
    (udev's or another's, e.g. a link made by RBDSR) under devices/scan
    (default /dev)."""
    if devices.get("obtain_device_list_from_udev") == 1:
        return list(udev_names)
    dirs = as_list(devices.get("scan", "/dev"))
    return [n for n in list(udev_names) + list(other_names) if any(under(n, d) for d in dirs)]


def rbd_problems(devices, udev_names, driver_names=()):
    """[(setting, why)] that stop LVM seeing an RBD device known by udev_names
    (kernel node, udev links) and driver_names (the links the driver makes and
    hands to pvcreate/vgcreate); [] when it would see it.

    lvm2 2.03 finds a path given on the command line only among the names it
    scanned ("No device found for ..."), so the driver's path must be one of them."""
    problems = []
    shown = as_list(devices.get("types"))
    if "rbd" not in type_names(devices):
        problems.append(("devices/types", "%s does not list \"rbd\"" % (shown or "unset")))
    found = scanned_names(devices, udev_names, driver_names)
    from_udev = devices.get("obtain_device_list_from_udev") == 1
    setting = "devices/obtain_device_list_from_udev" if from_udev else "devices/scan"
    where = "udev's names" if from_udev else "%s" % as_list(devices.get("scan", "/dev"))
    if not found:
        problems.append((setting, "%s holds none of %s" % (where, ", ".join(list(udev_names) + list(driver_names)))))
    else:
        missed = [n for n in driver_names if n not in found]
        if missed:
            problems.append((setting, "%s does not hold the driver's path %s (pvcreate: \"No device found\")"
                             % (where, ", ".join(missed))))
    for key in ("global_filter", "filter"):
        try:
            ok, why = filter_verdict(as_list(devices.get(key)), found)
        except ValueError as e:
            problems.append(("devices/" + key, str(e)))
            continue
        if not ok and found:
            problems.append(("devices/" + key, why))
    return problems
