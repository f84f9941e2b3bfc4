"""The files that ship to dom0 and so must be Python 3.6 clean."""
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOP_LEVEL = ["RBDSR.py", "install_rbdsr.py", "uninstall_rbdsr.py", "scripts/block-rbd", "bin/rbdsr"]
PACKAGES = ["rbdsr", "lvm_helpers"]


def dom0_files():
    """Repo-relative paths of every dom0 file that exists now."""
    files = [f for f in TOP_LEVEL if os.path.exists(os.path.join(ROOT, f))]
    for pkg in PACKAGES:
        pattern = os.path.join(ROOT, pkg, "**", "*.py")
        files += sorted(os.path.relpath(p, ROOT) for p in glob.glob(pattern, recursive=True))
    return files


def dom0_modules():
    """Importable module names of the dom0 .py files (scripts excluded)."""
    mods = []
    for f in dom0_files():
        if not f.endswith(".py") or f.startswith("scripts/"):
            continue
        name = f[:-3].replace(os.sep, ".")
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        mods.append(name)
    return mods
