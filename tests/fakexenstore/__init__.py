"""A file-backed stand-in for xenstore and the xenstore-utils commands.

Why a stand-in: Debian's xenstored (xen-utils-4.17) needs a Xen hypervisor --
with --no-domain-init it starts without one but segfaults on the first client
request, and oxenstored needs /dev/xen/evtchn -- so the real store cannot run
on a test machine. The stand-in keeps the tree in one JSON file (flock'ed) and
mimics xenstore-read / -write / -list / -exists / -rm of xenstore-utils 4.17:
same arguments, output, "<prog>: couldn't read path P" style errors and exit
codes, implicit parent creation on write, subtree removal on rm, and relative
paths resolved against dom0's home /local/domain/0.

install(bin_dir, db_path) writes the five commands into bin_dir; put bin_dir
first on PATH and set FAKE_XENSTORE_DB (the returned env does both).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = ("xenstore-read", "xenstore-write", "xenstore-list", "xenstore-exists", "xenstore-rm")


def install(bin_dir, db_path, python=None):
    """Create the xenstore-* commands in bin_dir; return an env dict using them."""
    python = python or sys.executable
    os.makedirs(bin_dir, exist_ok=True)
    impl = os.path.join(HERE, "fakexs.py")
    for tool in TOOLS:
        path = os.path.join(bin_dir, tool)
        with open(path, "w") as f:
            f.write('#!/bin/sh\nexec "%s" "%s" %s "$@"\n' % (python, impl, tool))
        os.chmod(path, 0o755)
    if not os.path.exists(db_path):
        with open(db_path, "w") as f:
            json.dump({}, f)
    env = dict(os.environ)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["FAKE_XENSTORE_DB"] = db_path
    return env


def load(db_path):
    """The whole store as {path: value} (for assertions)."""
    with open(db_path) as f:
        return json.load(f)
