"""The `types = [ ..., "rbd", 1024 ]` entry of an LVM config file's devices section.

LVM only scans block device types it knows; /dev/rbdN needs "rbd" in
devices/types. The installer puts it into lvmlocal.conf (see
rbdsr/installer/lvmconf.py); the VM lab also uses it on lvm.conf. These are
pure text transformations; LVM itself (lvmconfig) judges every result before
the installer writes it:

- add_rbd_types(text) -> text with the entry (unchanged if present);
- remove_rbd_types(text) -> the exact original bytes when we added it.

What we add sits between marker comments; an active `types` list we had to
extend is kept, commented out with a marker prefix, so removal restores it.
The lexer follows libdevmapper's config tokenizer: `#` comments to the end of
the line, "double-quoted" strings with backslash escapes, 'single-quoted'
strings without escapes.
"""
import re

BEGIN = "# RBDSR-BEGIN: added by rbdsr, removed on uninstall"
EOF_FLAG = " [no newline at end of original]"
END = "# RBDSR-END"
DISABLED = "#RBDSR-DISABLED# "
ENTRY = ('"rbd"', "1024")

_SECTION_RE = re.compile(r"(?<![\w/])devices\s*\{")
_TYPES_RE = re.compile(r"(?<![\w/])types\s*=\s*\[")
_ITEM_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^\s,]+', re.S)


def _lex(text):
    """(code, masked): code = text with comments blanked (strings kept);
    masked = code with string contents replaced by 'x'. Both keep length and
    newlines, so positions found in one are valid in all three."""
    code, masked = list(text), list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            while i < n and text[i] != "\n":
                code[i] = masked[i] = " "
                i += 1
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if (c == '"' and text[j] == "\\") else 1
            for k in range(i + 1, min(j, n)):
                if text[k] != "\n":
                    masked[k] = "x"
            i = j + 1
            continue
        i += 1
    return "".join(code), "".join(masked)


def _lines(text):
    """text split after each "\\n" only (not at the other characters
    str.splitlines knows), line ends kept."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _newline(text):
    return "\r\n" if "\r\n" in text else "\n"


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


def _devices_sections(masked):
    """[(open_brace_pos, close_brace_pos)] of top-level devices sections."""
    out = []
    for m in _SECTION_RE.finditer(masked):
        if _depth(masked, m.start()) != 0:
            continue
        ob = m.end() - 1
        cb = _close_brace(masked, ob)
        if cb < 0:
            raise ValueError("the devices section is not closed")
        out.append((ob, cb))
    return out


def _types_lists(masked, section):
    """[(assign_start, lbracket, rbracket)] of active `types = [...]` in a section."""
    ob, cb = section
    out = []
    for m in _TYPES_RE.finditer(masked, ob + 1, cb):
        if _depth(masked, m.start(), ob + 1) != 0:
            continue
        rb = masked.find("]", m.end(), cb)
        if rb < 0:
            raise ValueError("a types list is not closed")
        out.append((m.start(), m.end() - 1, rb))
    return out


def _items(code, lb, rb):
    """The list's elements as written (comments dropped)."""
    return _ITEM_RE.findall(code[lb + 1:rb])


def _unquote(item):
    return item[1:-1] if item[:1] in "\"'" and item[-1:] == item[:1] else None


def _read_if_path(text_or_path):
    if "\n" not in text_or_path and "{" not in text_or_path and text_or_path.startswith("/"):
        with open(text_or_path, "r") as f:
            return f.read()
    return text_or_path


def has_rbd_types(text_or_path):
    """True when an active devices/types list of this one file names "rbd"
    (a lab helper: what LVM makes of all its files together is lvmconfig's to say)."""
    text = _read_if_path(text_or_path)
    code, masked = _lex(text)
    for section in _devices_sections(masked):
        for _s, lb, rb in _types_lists(masked, section):
            items = _items(code, lb, rb)
            if any(_unquote(it) == "rbd" for it in items[0::2]):
                return True
    return False


def _line_start(text, pos):
    return text.rfind("\n", 0, pos) + 1


def _line_end(text, pos):
    e = text.find("\n", pos)
    return len(text) if e < 0 else e + 1


def _indent_of(text, pos):
    return re.match(r"[ \t]*", text[_line_start(text, pos):]).group(0)


def _block(indent, body, nl):
    return indent + BEGIN + nl + body + indent + END + nl


def add_rbd_types(text):
    """text with "rbd", 1024 in the devices section's types (idempotent)."""
    if has_rbd_types(text):
        return text
    nl = _newline(text)
    code, masked = _lex(text)
    sections = _devices_sections(masked)
    entry = ", ".join(ENTRY)
    if not sections:
        prefix = flag = ""
        if text and not text.endswith("\n"):
            prefix, flag = nl, EOF_FLAG
        return (text + prefix + BEGIN + flag + nl + "devices {" + nl + "\ttypes = [ " + entry + " ]" + nl
                + "}" + nl + END + nl)
    section = sections[-1]
    ob, cb = section
    lists = _types_lists(masked, section)
    if lists:
        # Extend the effective (last) list; keep every active one, commented out.
        first_ls = _line_start(text, lists[0][0])
        last_le = _line_end(text, lists[-1][2])
        if masked[first_ls:lists[0][0]].strip() or masked[lists[-1][2] + 1:last_le].strip():
            raise ValueError("the types setting shares its line with other settings; "
                             "add \"rbd\", 1024 to it by hand")
        if "\n" not in text[last_le - 1:last_le]:
            raise ValueError("the types setting ends the file without a newline; add \"rbd\", 1024 by hand")
        indent = _indent_of(text, lists[-1][0])
        _s, lb, rb = lists[-1]
        merged = "[ " + ", ".join(_items(code, lb, rb) + list(ENTRY)) + " ]"
        disabled = "".join(DISABLED + ln for ln in _lines(text[first_ls:last_le]))
        block = _block(indent, indent + "types = " + merged + nl, nl)
        return text[:first_ls] + disabled + block + text[last_le:]
    # No types list: insert right after the "devices {" line.
    if masked.find("\n", ob, cb) < 0:
        raise ValueError("the devices section is on one line; add types = [ \"rbd\", 1024 ] by hand")
    insert_at = _line_end(text, ob)
    if masked[ob + 1:insert_at].strip():
        raise ValueError("settings follow 'devices {' on its line; add the types entry by hand")
    nxt = re.search(r"\S", masked[insert_at:cb])
    indent = (_indent_of(text, insert_at + nxt.start()) if nxt else "") or "\t"
    block = _block(indent, indent + "types = [ " + entry + " ]" + nl, nl)
    return text[:insert_at] + block + text[insert_at:]


def remove_rbd_types(text):
    """Undo add_rbd_types: drop our block, re-enable the lines we disabled."""
    out = []
    skipping = False
    strip_final = ""
    for line in _lines(text):
        stripped = line.strip()
        if not skipping and stripped.startswith(BEGIN):
            skipping = True
            if stripped.endswith(EOF_FLAG.strip()):
                strip_final = line[len(line.rstrip("\r\n")):]
            continue
        if skipping:
            if stripped == END:
                skipping = False
            continue
        if line.startswith(DISABLED):
            line = line[len(DISABLED):]
        out.append(line)
    result = "".join(out)
    if strip_final and result.endswith(strip_final):
        result = result[:-len(strip_final)]
    return result


def ensure_rbd_types(path):
    """New content for the config file at `path` (the same content when already fine)."""
    with open(path, "r") as f:
        text = f.read()
    return add_rbd_types(text)


def added_by_us(text):
    """True when the text carries our block (so uninstall has something to undo)."""
    return any(line.strip().startswith(BEGIN) for line in _lines(text))
