"""dom0's LVM and RBD devices, asking LVM itself (lvmconfig).

RBDSR adds "rbd" to devices/types in lvmlocal.conf of /etc/lvm and of
/etc/lvm/master (sm runs some LVM commands with LVM_SYSTEM_DIR=/etc/lvm/master).
lvm.conf is left alone, so an sm or lvm2 update that replaces it undoes
nothing. LVM reads lvmlocal.conf after lvm.conf from the same directory and
puts its devices/types in front of lvm.conf's, so the shipped entries stay.

Every candidate file is put, with the other *.conf files of its directory,
into a scratch directory and loaded there by `lvmconfig --validate` before it
goes in place; whether LVM would then see an RBD device is judged from
`lvmconfig --type full devices` (lvm_helpers.lvmview).
"""
import os
import shutil
import tempfile

from lvm_helpers import lvmconf as _text
from lvm_helpers import lvmview
from rbdsr import proc
from rbdsr.errors import RBDError
from rbdsr.installer import system, udevrule

LVM_DIRS = ("etc/lvm", "etc/lvm/master")
MAIN = "lvm.conf"
LOCAL = "lvmlocal.conf"
TIMEOUT = 30


def local_rel(dir_rel):
    return os.path.join(dir_rel, LOCAL)


def main_rel(dir_rel):
    return os.path.join(dir_rel, MAIN)


def remove_rbd_types(text):
    return _text.remove_rbd_types(text)


def added_by_us(text):
    return _text.added_by_us(text)


class View(object):
    """What LVM makes of one config directory: error (None when it loads and
    validates), devices ({setting: value}), stderr lines of the run."""

    def __init__(self, error, devices, messages):
        self.error = error
        self.devices = devices
        self.messages = messages

    def rbd_problems(self, with_rule=True):
        names, cmdline = udevrule.sample_names(with_rule)
        return lvmview.rbd_problems(self.devices, names, cmdline)


def _lvmconfig(system_dir, args, timeout):
    env = dict(os.environ)
    env["LVM_SYSTEM_DIR"] = system_dir
    env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
    return proc.run([system.tool("lvmconfig")] + list(args), timeout, env=env)


def _messages(err):
    return [ln.strip() for ln in (err or "").splitlines() if ln.strip()]


def view(system_dir, timeout=TIMEOUT):
    """LVM's view of the directory as LVM_SYSTEM_DIR (nothing written)."""
    try:
        r = _lvmconfig(system_dir, ["--validate"], timeout)
        if r.rc != 0:
            msgs = _messages(r.err) + _messages(r.out)
            return View("lvmconfig --validate: %s" % (" / ".join(msgs[-3:]) or "rc %d" % r.rc), {}, msgs)
        r2 = _lvmconfig(system_dir, ["--type", "full", "devices"], timeout)
    except RBDError as e:
        return View("cannot ask LVM: %s" % e, {}, [])
    msgs = _messages(r.err) + _messages(r2.err)
    if r2.rc != 0:
        return View("lvmconfig --type full devices: %s" % (" / ".join(msgs[-3:]) or "rc %d" % r2.rc), {}, msgs)
    try:
        devices = lvmview.parse_section(r2.out)
    except ValueError as e:
        return View(str(e), {}, msgs)
    return View(None, devices, msgs)


def view_with(dir_abs, files, timeout=TIMEOUT):
    """LVM's view of dir_abs's top-level *.conf files with `files` ({name:
    bytes, or None for absent}) in their place, from a private scratch copy."""
    scratch = tempfile.mkdtemp(prefix="rbdsr-lvm-")
    try:
        for name in sorted(os.listdir(dir_abs)) if os.path.isdir(dir_abs) else []:
            src = os.path.join(dir_abs, name)
            if name.endswith(".conf") and name not in files and os.path.isfile(src):
                shutil.copyfile(src, os.path.join(scratch, name))
        for name, data in files.items():
            if data is not None:
                with open(os.path.join(scratch, name), "wb") as f:
                    f.write(data)
        v = view(scratch, timeout)
        # the scratch name must not make two views' messages differ
        v.messages = [m.replace(scratch, dir_abs) for m in v.messages]
        v.error = v.error and v.error.replace(scratch, dir_abs)
        return v
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _describe(problems):
    return "; ".join("%s: %s" % p for p in problems)


def plan_local(dir_abs, where, orig, others, decode, encode, timeout=TIMEOUT):
    """The lvmlocal.conf bytes that make LVM in dir_abs see RBD devices, given
    its original bytes (None: absent) and the other files as they will be
    ({name: bytes}). Raises RBDError, naming `where`, when LVM cannot load the
    directory as it is, would reject the candidate, or would still not see an
    RBD device with it."""
    before = view_with(dir_abs, dict(others, **{LOCAL: orig}), timeout)
    if before.error:
        raise RBDError("LVM cannot load the configuration in %s as it is (%s); fix that first"
                       % (where, before.error))
    new = orig
    if "rbd" not in lvmview.type_names(before.devices):
        try:
            new = encode(_text.add_rbd_types(decode(orig) or ""))
        except ValueError as e:
            raise RBDError("%s/%s: %s" % (where, LOCAL, e))
        after = view_with(dir_abs, dict(others, **{LOCAL: new}), timeout)
        if after.error:
            raise RBDError("LVM rejects the %s/%s RBDSR would write (%s)" % (where, LOCAL, after.error))
        added = [m for m in after.messages if m not in before.messages]
        if added:
            raise RBDError("LVM warns about the %s/%s RBDSR would write: %s" % (where, LOCAL, " / ".join(added)))
        lost = [t for t in lvmview.type_names(before.devices) if t not in lvmview.type_names(after.devices)]
        if lost:
            raise RBDError("the %s/%s RBDSR would write drops device types %s" % (where, LOCAL, lost))
    else:
        after = before
    problems = after.rbd_problems()
    if problems:
        raise RBDError("LVM in %s would still not see RBD devices: %s; change that setting first"
                       % (where, _describe(problems)))
    return new


def validate_files(dir_abs, where, files, timeout=TIMEOUT):
    """Raise RBDError unless LVM loads dir_abs with `files` in place."""
    v = view_with(dir_abs, files, timeout)
    if v.error:
        raise RBDError("LVM would not load %s with that change (%s)" % (where, v.error))


def check_dir(dir_abs, where, with_rule=True, timeout=TIMEOUT):
    """(ok_line, problems) for check: what LVM with LVM_SYSTEM_DIR=dir makes of
    RBD devices (with_rule: whether udev gives them their by-id name)."""
    if not os.path.isfile(os.path.join(dir_abs, MAIN)):
        return None, ["%s/%s is missing" % (where, MAIN)]
    v = view(dir_abs, timeout)
    if v.error:
        return None, ["LVM cannot load its configuration in %s: %s" % (where, v.error)]
    problems = v.rbd_problems(with_rule)
    if problems:
        return None, ["LVM with LVM_SYSTEM_DIR=%s would not see RBD devices: %s" % (where, _describe(problems))]
    return ("LVM with LVM_SYSTEM_DIR=%s sees RBD devices (devices/types has rbd; %s*-names scanned and accepted)"
            % (where, os.path.join(udevrule.BY_ID, udevrule.PREFIX))), []
