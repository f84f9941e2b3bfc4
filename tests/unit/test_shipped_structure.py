"""Shape of the shipped code, read statically (no import, no sm): RBDSR.py is a
thin launcher; no import circle anywhere in what ships to dom0 (function-local
imports included); the diversion rule and its port have one home; credentials,
monitor addresses and image identities each have one; no dead helper ships."""
import ast
import os

from tests.dom0files import ROOT, dom0_files, dom0_modules


def _tree(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return ast.parse(f.read(), rel)


def _module_of(rel):
    mod = rel[:-3].replace("/", ".")
    return mod[:-len(".__init__")] if mod.endswith(".__init__") else mod


def _py_files():
    return [f for f in dom0_files() if f.endswith(".py")]


def _imports(rel, modules):
    """Every module `rel` imports, at any depth of its code."""
    out = set()
    for node in ast.walk(_tree(rel)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                sub = node.module + "." + a.name
                out.add(sub if sub in modules else node.module)
    return set(m for m in out if m in modules)


def test_rbdsr_py_is_a_thin_launcher():
    tree = _tree("RBDSR.py")
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    imported = _imports("RBDSR.py", set(dom0_modules()) | set(["os", "sys"]))
    assert imported <= set(["os", "sys", "rbdsr.smglue.versioncli", "rbdsr.smglue.driver"]), imported
    with open(os.path.join(ROOT, "RBDSR.py")) as f:
        code = [ln for ln in f.read().split('"""')[-1].splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) <= 15, code


def test_no_import_circle_in_shipped_code():
    modules = set(dom0_modules())
    graph = dict((_module_of(f), _imports(f, modules)) for f in _py_files())
    assert "rbdsr.smglue.driver" in graph["rbdsr.smglue.divert"]  # the reader sees real edges
    assert "rbdsr.backends.ssh" in graph["rbdsr.backends"]  # function-local imports count
    cycles = []

    def visit(mod, path):
        for dep in sorted(graph.get(mod, ())):
            if dep == path[0]:
                cycles.append(path + [dep])
            elif dep not in path and dep > path[0]:  # each cycle once, from its smallest module
                visit(dep, path + [dep])

    for mod in sorted(graph):
        visit(mod, [mod])
    assert not cycles, cycles


def _literals(rel):
    for node in ast.walk(_tree(rel)):
        if isinstance(node, ast.Compare):
            for c in [node.left] + list(node.comparators):
                value = getattr(c, "value", getattr(c, "n", getattr(c, "s", None)))
                if value in (6789, "6789"):
                    yield node.lineno


def test_the_diversion_port_is_compared_in_one_place():
    offenders = [(f, line) for f in _py_files() if f != "rbdsr/diversion.py" for line in _literals(f)]
    assert not offenders, offenders
    with open(os.path.join(ROOT, "patches", "lvhdoiscsisr-hook.py.in")) as f:
        hook = f.read()
    assert "from rbdsr.diversion import wants_rbd" in hook and "6789" not in hook


def _defs(name):
    return [f for f in _py_files() for n in ast.walk(_tree(f))
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name]


def test_one_home_each():
    # credentials, keyring lookup, addresses, image identity
    for name, home in (("resolve", ["rbdsr/credentials.py", "rbdsr/monaddr.py", "rbdsr/config.py"]),
                       ("find_keyring", ["rbdsr/credentials.py"]),
                       ("read_keyring", ["rbdsr/secret.py"]),
                       ("format_addr", ["rbdsr/monaddr.py"]),
                       ("parse_mon_host", ["rbdsr/monaddr.py"]),
                       ("resolve_host", ["rbdsr/monaddr.py"]),
                       ("ImageId", ["rbdsr/image.py"]),
                       ("key_payload", ["rbdsr/kernel_keyring.py"]),
                       ("credentials", ["rbdsr/smglue/transport.py"]),
                       ("cephx_secret", [])):
        assert sorted(_defs(name)) == sorted(home), (name, _defs(name))
    spec_defs = [f for f in _py_files() for n in ast.walk(_tree(f))
                 if isinstance(n, ast.FunctionDef) and n.name == "spec"]
    assert spec_defs == ["rbdsr/image.py", "rbdsr/image.py"], spec_defs  # the function and ImageId.spec


def test_no_test_only_helpers_ship():
    assert not os.path.exists(os.path.join(ROOT, "lvm_helpers", "attach.py"))
    # the add-string builder is the one map_image uses
    src = open(os.path.join(ROOT, "rbdsr", "krbd.py")).read()
    assert src.count("build_add_string(") == 2  # its definition and map_image's call
