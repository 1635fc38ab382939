"""The shape of the code (issue: one shape for every model family): no import cycle anywhere in
pfgmbench (function-level imports included), and no branch on a model family's name, nor on
D = inf, outside physics/."""
import ast
from pathlib import Path

import pfgmbench
from pfgmbench.physics import FAMILIES

ROOT = Path(pfgmbench.__file__).parent


def modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _resolve(name, known):
    """The longest known module a dotted import name refers to."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph():
    mods = dict(modules())
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for t in targets:
                if t.startswith("pfgmbench"):
                    dep = _resolve(t, mods)
                    if dep and dep != mod and not mod.startswith(dep + "."):   # a package's own __init__ is not a cycle
                        graph[mod].add(dep)
    return graph


def test_no_import_cycles():
    graph = import_graph()
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_cli_is_imported_by_nothing():
    graph = import_graph()
    assert not [m for m, deps in graph.items() if "pfgmbench.cli" in deps and m != "pfgmbench.__main__"]


def _family_branches(tree):
    names = set(FAMILIES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                consts = [side] if isinstance(side, ast.Constant) else (
                    list(side.elts) if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [])
                for c in consts:
                    if isinstance(c, ast.Constant) and c.value in names:
                        yield node.lineno, ast.unparse(node)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("isinf"):
            arg = ast.unparse(node.args[0]) if node.args else ""
            if "D" in arg.replace("Dict", ""):
                yield node.lineno, ast.unparse(node)


def test_no_family_name_branch_outside_physics():
    found = []
    for mod, path in modules():
        if mod.startswith("pfgmbench.physics"):
            continue
        for line, code in _family_branches(ast.parse(path.read_text())):
            found.append(f"{path.relative_to(ROOT.parent)}:{line}: {code}")
    assert not found, "\n".join(found)


def test_the_checks_catch_what_they_look_for():
    """The two structural checks fail on code that breaks them."""
    bad = ast.parse('if cfg["physics"]["family"] == "edm":\n    pass\nif math.isinf(D):\n    pass\n')
    assert len(list(_family_branches(bad))) == 2


def test_readme_documents_every_command_and_option():
    import click

    from pfgmbench.cli import cli

    readme = (ROOT.parent / "README.md").read_text()
    missing = []

    def walk(cmd, prefix):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, prefix + [name])
            return
        line = next((ln for ln in readme.splitlines() if ln.startswith(f"- `pfgmbench {' '.join(prefix)}`:")), None)
        if line is None:
            missing.append(" ".join(prefix))
            return
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "help" and f"`{max(p.opts, key=len)}`" not in line:
                missing.append(f"{' '.join(prefix)} {max(p.opts, key=len)}")

    walk(cli, [])
    assert not missing, "README lacks: " + ", ".join(missing)
