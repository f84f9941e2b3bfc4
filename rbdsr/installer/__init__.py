"""Logic of install_rbdsr.py / uninstall_rbdsr.py (the scripts are thin CLIs).

Modules: layout (which sm), hook (the inserted block), fileops (atomic writes),
manifest (state + backups), enable / disable / check (the commands), cli.
"""

EXIT_OK = 0       # done / installed and complete
EXIT_MISSING = 1  # not installed, incomplete, drift, or something left in place
EXIT_REFUSED = 2  # usage error, or refused (unknown layout, anchor, RBD attached, failure undone)


def fingerprints(root="/"):
    """[(path, state, sha256 short)] of the hooked sm files; see check.fingerprints."""
    from rbdsr.installer.check import fingerprints as _fp
    return _fp(root)
