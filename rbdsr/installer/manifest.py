"""The installer's state: <root>/var/lib/rbdsr/manifest.json (what was
installed or changed, with checksums) and backup/ (each changed file's
original, taken when first seen). Written atomically like every other file."""
import json
import os

from rbdsr.installer import fileops

STATE_DIR = "var/lib/rbdsr"
MANIFEST = "manifest.json"
BACKUP_DIR = "backup"
FORMAT = 1


class Manifest(object):
    """files: {relpath: entry}; entry keys: role ('hook'|'config'|'installed'),
    orig_sha256 (None: the file did not exist), backup (relpath under the state
    dir or None), meta ([mode, uid, gid] of the original or None), mtime_ns (of the
    original, when known: restored with it, so a package manager's verify stays
    clean), sha256 (what we write). dirs: relpaths of directories we created."""

    def __init__(self, root, data=None):
        self.root = root
        self.data = data or {"format": FORMAT, "complete": False, "files": {}, "dirs": [], "steps_done": []}
        self.exists = data is not None

    # paths
    @property
    def state_dir(self):
        return os.path.join(self.root, STATE_DIR)

    @property
    def path(self):
        return os.path.join(self.state_dir, MANIFEST)

    def abspath(self, rel):
        return os.path.join(self.root, rel)

    @classmethod
    def load(cls, root):
        """The manifest under root, or an empty one (exists False)."""
        m = cls(root)
        raw = fileops.read_bytes(m.path)
        if raw is None:
            return m
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            from rbdsr.errors import RBDError
            raise RBDError("%s is corrupt (%s); move it away and re-run" % (m.path, e))
        return cls(root, data)

    def save(self, dry_run=False):
        if dry_run:
            return
        fileops.makedirs(self.state_dir, [])
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        fileops.atomic_write(self.path, text.encode("utf-8"), (0o600, os.getuid(), os.getgid()))
        self.exists = True

    # accessors
    @property
    def files(self):
        return self.data["files"]

    @property
    def dirs(self):
        return self.data["dirs"]

    def add_dirs(self, absdirs):
        for d in absdirs:
            rel = os.path.relpath(d, self.root)
            if rel not in self.dirs:
                self.dirs.append(rel)

    def backup_path(self, entry):
        return os.path.join(self.state_dir, entry["backup"]) if entry.get("backup") else None

    def read_backup(self, entry):
        """The original bytes (None: it did not exist); None too when the backup
        is missing or does not match its checksum (callers check orig_sha256)."""
        if entry.get("orig_sha256") is None:
            return None
        data = fileops.read_bytes(self.backup_path(entry))
        return data if fileops.sha256(data) == entry["orig_sha256"] else None

    def backup_ok(self, entry):
        return entry.get("orig_sha256") is None or self.read_backup(entry) is not None

    def record_original(self, rel, role, orig, meta, mtime_ns=None):
        """Back up `orig` (bytes or None) of rel and (re)start its entry."""
        entry = {"role": role, "orig_sha256": fileops.sha256(orig), "backup": None,
                 "meta": list(meta) if meta else None, "mtime_ns": mtime_ns, "sha256": None}
        if orig is not None:
            entry["backup"] = os.path.join(BACKUP_DIR, rel)
            dest = self.backup_path(entry)
            fileops.makedirs(os.path.dirname(dest), [])
            fileops.atomic_write(dest, orig, (0o600, os.getuid(), os.getgid()))
        self.files[rel] = entry
        return entry
