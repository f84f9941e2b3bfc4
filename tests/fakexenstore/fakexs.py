"""Implementation of the stand-in xenstore commands (see __init__.py).

Usage: fakexs.py <tool> [args...], the store in $FAKE_XENSTORE_DB.
The store is a flat JSON object {absolute path: value}; a path exists when it
is a key (parents are created with "" like xenstored does).
"""
import fcntl
import json
import os
import sys

HOME = "/local/domain/0"


def _abs(path):
    path = path.rstrip("/") or "/"
    if not path.startswith("/"):
        path = HOME + "/" + path
    return path


def _parents(path):
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _children(store, path):
    prefix = path.rstrip("/") + "/"
    names = []
    for p in store:
        if p.startswith(prefix) and p != prefix:
            name = p[len(prefix):].split("/")[0]
            if name not in names:
                names.append(name)
    return names


def main(argv):
    tool, args = argv[0], argv[1:]
    db = os.environ.get("FAKE_XENSTORE_DB")
    if not db:
        sys.stderr.write("%s: xs_open: No such file or directory\n" % tool)
        return 1
    with open(db, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        store = json.load(f)
        rc, changed = run(tool, args, store)
        if changed:
            f.seek(0)
            f.truncate()
            json.dump(store, f, indent=1, sort_keys=True)
    return rc


def run(tool, args, store):
    """Returns (exit code, store changed)."""
    if tool == "xenstore-read":
        if not args:
            sys.stderr.write("Usage: %s [-h] [-p] [-s] [-R] key [...]\n" % tool)
            return 2, False
        out = []
        for a in args:
            p = _abs(a)
            if p not in store:
                sys.stdout.write("".join(out))
                sys.stderr.write("%s: couldn't read path %s\n" % (tool, a))
                return 1, False
            out.append(store[p] + "\n")
        sys.stdout.write("".join(out))
        return 0, False
    if tool == "xenstore-write":
        if not args or len(args) % 2:
            sys.stderr.write("Usage: %s [-h] [-s] [-R] key value [...]\n" % tool)
            return 2, False
        for i in range(0, len(args), 2):
            p = _abs(args[i])
            for parent in _parents(p):
                store.setdefault(parent, "")
            store[p] = args[i + 1]
        return 0, True
    if tool == "xenstore-exists":
        if not args:
            sys.stderr.write("Usage: %s [-h] [-s] key [...]\n" % tool)
            return 2, False
        return (0 if all(_abs(a) in store for a in args) else 1), False
    if tool == "xenstore-list":
        p = _abs(args[0]) if args else HOME
        if p not in store and p != "/":
            sys.stderr.write("%s: could not list path %s\n" % (tool, args[0] if args else p))
            return 1, False
        for name in _children(store, p):
            sys.stdout.write(name + "\n")
        return 0, False
    if tool == "xenstore-rm":
        for a in args:
            p = _abs(a)
            if p not in store:
                parent = p.rsplit("/", 1)[0] or "/"
                if parent in store or parent == "/":
                    continue  # xenstored: removing a missing node under an existing parent is fine
                sys.stderr.write("%s: could not remove path %s\n" % (tool, a))
                return 1, False
            for k in [k for k in store if k == p or k.startswith(p + "/")]:
                del store[k]
        return 0, True
    sys.stderr.write("unknown mode %s\n" % tool)
    return 2, False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
