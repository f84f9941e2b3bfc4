"""`RBDSR.py version`: the version, the sm shape found and the installed hook
fingerprints. Imports no sm module, so it answers on any machine."""
import sys


def main(out=None):
    """`RBDSR.py version`: version, sm shape, installed hook fingerprints. Exit 0."""
    out = out or sys.stdout
    from rbdsr.smglue import shapes
    from rbdsr.version import read_version
    out.write("RBDSR %s\n" % read_version())
    shape = shapes.running()
    out.write("sm shape: %s\n" % ("%s (%s)" % (shape.key, shape.description) if shape else "none"))
    try:
        from rbdsr.installer import fingerprints
    except (ImportError, AttributeError):
        out.write("hook fingerprints: unavailable (installer module not present)\n")
        return 0
    try:
        fps = fingerprints(root="/")
    except Exception as e:  # noqa: BLE001 - version must always answer
        out.write("hook fingerprints: unavailable (%s)\n" % e)
        return 0
    for line in fingerprint_lines(fps):
        out.write(line + "\n")
    return 0


def fingerprint_lines(fps):
    """'hook <path>: <state> <hash>' lines from the installer's fingerprints
    ([(path, state, sha)] or {path: text})."""
    items = sorted(fps.items()) if isinstance(fps, dict) else list(fps or [])
    if not items:
        return ["hook fingerprints: none installed"]
    lines = []
    for item in items:
        if isinstance(item, (tuple, list)) and item:
            lines.append("hook %s: %s" % (item[0], " ".join(str(x) for x in item[1:])))
        else:
            lines.append("hook %s" % (item,))
    return lines
