"""Where the version comes from: the VERSION file shipped beside the package."""
import os
import re

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def version_file():
    """VERSION sits in the directory that holds the rbdsr package (repo root or
    the install directory on dom0)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), "VERSION")


def read_version(path=None):
    """Return 'x.y.z' from VERSION; 'unknown' if the file is missing or malformed
    (a broken install must still be able to report itself)."""
    path = path or version_file()
    try:
        with open(path) as f:
            text = f.read().strip()
    except (IOError, OSError):
        return "unknown"
    return text if _VERSION_RE.match(text) else "unknown"


def release_stage(version):
    """The scheme of VERSION: y = 0 pre-release, 1 testing, 2 stable."""
    parts = version.split(".")
    if len(parts) != 3:
        return "unknown"
    return {"0": "pre-release", "1": "testing", "2": "stable"}.get(parts[1], "unknown")
