"""The hook: a small block inserted after `def load(self, sr_uuid)` of sm's
iSCSI LVM driver class (LVMoISCSISR or LVHDoISCSISR, rbdsr.smglue.shapes),
between RBDSR-HOOK-BEGIN / RBDSR-HOOK-END markers.

Pure text functions. Insertion and removal are exact inverses: removing the
block gives back the original bytes, which is what makes a byte-identical
restore possible even without the backup.
"""
import json
import os
import re

from rbdsr.errors import RBDError
from rbdsr.smglue import shapes

BEGIN_MARK = "# RBDSR-HOOK-BEGIN"
END_MARK = "# RBDSR-HOOK-END"
_BEGIN_RE = re.compile(r"^\s*# RBDSR-HOOK-BEGIN\b(.*)$")
_END_RE = re.compile(r"^\s*# RBDSR-HOOK-END\s*$")
_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+$")


class HookError(RBDError):
    """A file cannot be hooked or unhooked safely (anchor not unique, markers broken)."""


class HookSpec(object):
    """What patches/anchors.json and the hook template say."""

    def __init__(self, template, anchor, package, patches_dir):
        self.template = template
        # the hooked file defines exactly one of these (one per shape)
        self.class_names = tuple(sorted(set(s.iscsi_class for s in shapes.SHAPES)))
        self.anchor = anchor
        self.anchor_re = re.compile(anchor)
        self.package = package          # where the sm package's site-packages may be
        self.patches_dir = patches_dir

    def block(self, version):
        """The block for `version`, '\\n' line endings, ending with a newline."""
        text = self.template.replace("@HOOK_VERSION@", version)
        return text if text.endswith("\n") else text + "\n"


def default_patches_dir():
    """patches/ sits beside the rbdsr package: in the repo and in /usr/lib/rbdsr."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "patches")


def load_spec(patches_dir=None):
    patches_dir = patches_dir or default_patches_dir()
    path = os.path.join(patches_dir, "anchors.json")
    try:
        with open(path) as f:
            data = json.load(f)
        with open(os.path.join(patches_dir, data["hook_template"])) as f:
            template = f.read()
        return HookSpec(template, data["anchor"], data["package"], patches_dir)
    except (IOError, OSError, ValueError, KeyError) as e:
        raise HookError("cannot read the hook definition in %s: %s" % (patches_dir, e))


def split_lines(text):
    """Lines with their endings kept, so ''.join(split_lines(t)) == t."""
    return _LINE_RE.findall(text)


def _bare(line):
    return line.rstrip("\r\n")


def find_block(lines, where="file"):
    """(begin, end) line indices of the hook block, or None. Refuses unpaired
    or repeated markers: such a file was edited by hand and is not ours to guess."""
    begins = [i for i, ln in enumerate(lines) if _BEGIN_RE.match(_bare(ln))]
    ends = [i for i, ln in enumerate(lines) if _END_RE.match(_bare(ln))]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise HookError("%s: hook markers are broken (%d %s, %d %s lines); fix the file by hand"
                        % (where, len(begins), BEGIN_MARK, len(ends), END_MARK))
    return begins[0], ends[0]


def block_version(lines, span):
    m = _BEGIN_RE.match(_bare(lines[span[0]]))
    return m.group(1).strip() if m else ""


def strip(text, where="file"):
    """The text without the hook block (unchanged when there is none)."""
    if text is None:
        return None
    lines = split_lines(text)
    span = find_block(lines, where)
    if span is None:
        return text
    return "".join(lines[:span[0]] + lines[span[1] + 1:])


def find_anchor(lines, spec, where="file"):
    """Index of the anchor line inside the class; exactly one or HookError."""
    class_re = re.compile(r"^class (%s)\b" % "|".join(re.escape(c) for c in spec.class_names))
    starts = [i for i, ln in enumerate(lines) if class_re.match(ln)]
    if len(starts) != 1:
        raise HookError("%s: expected exactly one 'class %s' at column 0, found %d"
                        % (where, " or ".join(spec.class_names), len(starts)))
    class_name = class_re.match(lines[starts[0]]).group(1)
    hits = []
    for i in range(starts[0] + 1, len(lines)):
        bare = _bare(lines[i])
        if bare and not bare[0].isspace() and not bare.startswith("#"):
            break  # next top-level statement: end of the class body
        if spec.anchor_re.match(bare):
            hits.append(i)
    if len(hits) != 1:
        raise HookError("%s: expected exactly one line matching %r inside class %s, found %d"
                        % (where, spec.anchor, class_name, len(hits)))
    return hits[0]


def apply(text, spec, version, where="file"):
    """The text with the current hook block right after the anchor (any older
    block removed first). The block takes the anchor line's line ending."""
    orig = strip(text, where)
    lines = split_lines(orig)
    i = find_anchor(lines, spec, where)
    eol = lines[i][len(_bare(lines[i])):]
    if not eol:
        raise HookError("%s: the anchor line is the last line of the file" % where)
    block = [ln[:-1] + eol for ln in split_lines(spec.block(version))]
    return "".join(lines[:i + 1] + block + lines[i + 1:])


def state(text, spec, expected_version=None, where="file"):
    """'hooked' (current block right after the anchor), 'outdated' (a block of
    another version or text), 'absent', 'broken' (markers or anchor trouble) or
    'missing' (no file)."""
    if text is None:
        return "missing"
    try:
        lines = split_lines(text)
        span = find_block(lines, where)
        if span is None:
            return "absent"
        version = expected_version or block_version(lines, span)
        return "hooked" if apply(text, spec, version, where) == text else "outdated"
    except HookError:
        return "broken"


def compiles(text, filename):
    """None when `text` compiles with this interpreter, else the error text."""
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        return "%s: %s" % (type(e).__name__, e)
    return None
