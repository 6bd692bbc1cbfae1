"""The import graph of ``assistant/`` has no cycles.

Every import statement counts, also those inside functions or under
``TYPE_CHECKING``: a cycle dodged by a late import is still a cycle.
"""

from __future__ import annotations

import ast
from graphlib import CycleError
from graphlib import TopologicalSorter
from pathlib import Path

from tests.live_server import ROOT


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Map the dotted name of every module of ``package`` to its file."""
    modules = {}
    for path in (root / package).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported(name: str, node: ast.Import | ast.ImportFrom, modules: dict) -> set[str]:
    """Return the project modules one import statement of module ``name`` names."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = name.split(".")
            if modules[name].name != "__init__.py":
                parts = parts[:-1]  # a module's relative imports start at its package
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        # "from . import x" depends on the module x when there is one.
        targets = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        ]
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Return, for each module of ``package``, the project modules it imports."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[name] |= imported(name, node, modules)
    return graph


def test_the_assistant_package_has_no_import_cycle():
    graph = import_graph(ROOT, "assistant")
    assert len(graph) > 20  # the walk found the engine's modules too
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_checker_sees_a_late_import_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from . import b\n")
    (package / "b.py").write_text("from pkg.a import f\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"}
