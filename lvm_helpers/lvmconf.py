"""The `types = [ "rbd", 1024 ]` entry of lvm.conf's devices section.

LVM only scans block device types it knows; /dev/rbdN needs the entry in both
/etc/lvm/lvm.conf and /etc/lvm/master/lvm.conf on XCP-ng. These functions are
pure text transformations (the installer writes files atomically):

- add_rbd_types(text) -> text with the entry (unchanged if present);
- remove_rbd_types(text) -> the exact original bytes when we added it.

What we add sits between marker comments; an active `types` line we had to
extend is kept, commented out with a marker prefix, so removal restores it.
"""
import re

BEGIN = "# RBDSR-BEGIN: added by rbdsr, removed on uninstall"
EOF_FLAG = " [no newline at end of original]"
END = "# RBDSR-END"
DISABLED = "#RBDSR-DISABLED# "
ENTRY = '"rbd", 1024'

_SECTION_RE = re.compile(r"(?<![\w/])devices\s*\{")
_TYPES_RE = re.compile(r"(?<![\w/])types\s*=\s*\[")
_RBD_RE = re.compile(r'"rbd"\s*,')


def _mask(text):
    """text with comments blanked and string contents replaced by 'x' (same length),
    so braces and keywords can be found by position."""
    out = list(text)
    i, n, in_str = 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            if c == "\\" and i + 1 < n:
                out[i] = "x"
                if text[i + 1] != "\n":
                    out[i + 1] = "x"
                i += 2
                continue
            if c == '"':
                in_str = False
            elif c != "\n":
                out[i] = "x"
        elif c == '"':
            in_str = True
        elif c == "#":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
            continue
        i += 1
    return "".join(out)


def _depth(masked, pos, start=0):
    seg = masked[start:pos]
    return seg.count("{") - seg.count("}")


def _close_brace(masked, open_pos):
    depth = 0
    for i in range(open_pos, len(masked)):
        if masked[i] == "{":
            depth += 1
        elif masked[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _devices_sections(text, masked):
    """[(open_brace_pos, close_brace_pos)] of top-level devices sections."""
    out = []
    for m in _SECTION_RE.finditer(masked):
        if _depth(masked, m.start()) != 0:
            continue
        ob = m.end() - 1
        cb = _close_brace(masked, ob)
        if cb < 0:
            raise ValueError("lvm.conf: the devices section is not closed")
        out.append((ob, cb))
    return out


def _types_lists(text, masked, section):
    """[(assign_start, lbracket, rbracket)] of active `types = [...]` in a section."""
    ob, cb = section
    out = []
    for m in _TYPES_RE.finditer(masked, ob + 1, cb):
        if _depth(masked, m.start(), ob + 1) != 0:
            continue
        rb = masked.find("]", m.end(), cb)
        if rb < 0:
            raise ValueError("lvm.conf: a types list is not closed")
        out.append((m.start(), m.end() - 1, rb))
    return out


def _read_if_path(text_or_path):
    if "\n" not in text_or_path and "{" not in text_or_path and text_or_path.startswith("/"):
        with open(text_or_path, "r") as f:
            return f.read()
    return text_or_path


def has_rbd_types(text_or_path):
    """True when an active devices/types list names "rbd"."""
    text = _read_if_path(text_or_path)
    masked = _mask(text)
    for section in _devices_sections(text, masked):
        for _s, lb, rb in _types_lists(text, masked, section):
            if _RBD_RE.search(text, lb, rb + 1):
                return True
    return False


def _line_start(text, pos):
    return text.rfind("\n", 0, pos) + 1


def _line_end(text, pos):
    e = text.find("\n", pos)
    return len(text) if e < 0 else e + 1


def _indent_of(text, pos):
    ls = _line_start(text, pos)
    m = re.match(r"[ \t]*", text[ls:])
    return m.group(0)


def add_rbd_types(text):
    """text with `types = [ "rbd", 1024 ]` in the devices section (idempotent)."""
    if has_rbd_types(text):
        return text
    masked = _mask(text)
    sections = _devices_sections(text, masked)
    if not sections:
        prefix = ""
        flag = ""
        if text and not text.endswith("\n"):
            prefix, flag = "\n", EOF_FLAG
        return text + prefix + BEGIN + flag + "\ndevices {\n\ttypes = [ " + ENTRY + " ]\n}\n" + END + "\n"
    section = sections[-1]
    ob, cb = section
    lists = _types_lists(text, masked, section)
    if lists:
        # Extend the effective (last) list; keep every active one, commented out.
        first_ls = _line_start(text, lists[0][0])
        last_le = _line_end(text, lists[-1][2])
        if text[first_ls:lists[0][0]].strip() or text[lists[-1][2] + 1:last_le].strip():
            raise ValueError("lvm.conf: the types setting shares its line with other settings; "
                             "add \"rbd\", 1024 to it by hand")
        indent = _indent_of(text, lists[-1][0])
        _s, lb, rb = lists[-1]
        elems = text[lb + 1:rb].strip().rstrip(",").strip()
        merged = "[ " + (elems + ", " if elems else "") + ENTRY + " ]"
        old = text[first_ls:last_le]
        disabled = "".join(DISABLED + ln for ln in old.splitlines(True))
        if not disabled.endswith("\n"):
            disabled += "\n"
        block = indent + BEGIN + "\n" + indent + "types = " + merged + "\n" + indent + END + "\n"
        return text[:first_ls] + disabled + block + text[last_le:]
    # No types list: insert right after the "devices {" line.
    if masked.find("\n", ob, cb) < 0:
        raise ValueError("lvm.conf: the devices section is on one line; add types = [ \"rbd\", 1024 ] by hand")
    insert_at = _line_end(text, ob)
    if masked[ob + 1:insert_at].strip():
        raise ValueError("lvm.conf: settings follow 'devices {' on its line; add the types entry by hand")
    nxt = re.search(r"\S", masked[insert_at:cb])
    indent = _indent_of(text, insert_at + nxt.start()) if nxt else "\t"
    if not indent:
        indent = "\t"
    block = indent + BEGIN + "\n" + indent + "types = [ " + ENTRY + " ]\n" + indent + END + "\n"
    return text[:insert_at] + block + text[insert_at:]


def remove_rbd_types(text):
    """Undo add_rbd_types: drop our block, re-enable the lines we disabled."""
    out = []
    skipping = False
    strip_final_newline = False
    for line in text.splitlines(True):
        stripped = line.strip()
        if not skipping and stripped.startswith(BEGIN):
            skipping = True
            if stripped.endswith(EOF_FLAG.strip()):
                strip_final_newline = True
            continue
        if skipping:
            if stripped == END:
                skipping = False
            continue
        if line.startswith(DISABLED):
            line = line[len(DISABLED):]
        out.append(line)
    result = "".join(out)
    if strip_final_newline and result.endswith("\n"):
        result = result[:-1]
    return result


def ensure_rbd_types(path):
    """New content for the lvm.conf at `path` (the same content when already fine)."""
    with open(path, "r") as f:
        text = f.read()
    return add_rbd_types(text)


def added_by_us(text):
    """True when the text carries our block (so uninstall has something to undo)."""
    return any(line.strip().startswith(BEGIN) for line in text.splitlines())
