"""The package's shape: no private names across modules, the front-ends apart, result types light to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "ser_live"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of imports made only for type checkers (``if TYPE_CHECKING:``), which never run."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            lines |= {child.lineno for block in node.body for child in ast.walk(block) if hasattr(child, "lineno")}
    return lines


def _imports(path: Path, *, runtime_only: bool = False) -> list[tuple[str, list[str], int]]:
    """``(module imported, names taken from it, line)`` for every import in one source file, resolved.

    ``runtime_only`` leaves out the imports of ``if TYPE_CHECKING:`` blocks.
    """
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_lines(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.extend(_from_import(node, package))
    return out


def _from_import(node: ast.ImportFrom, package: str) -> list[tuple[str, list[str], int]]:
    """A ``from ... import ...`` resolved against the importing module's package."""
    if node.level:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = [alias.name for alias in node.names]
    if not node.module:  # "from . import x": x is a module of the package
        return [(f"{target}.{name}", [], node.lineno) for name in names]
    return [(target, names, node.lineno)]


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_import_walk_sees_relative_and_absolute_imports():
    """The checker itself: it resolves the package's relative imports (else the tests below prove nothing)."""
    found = {target for target, _names, _line in _imports(PACKAGE / "gui" / "window.py")}
    assert {"ser_live.app", "ser_live.results", "ser_live.gui.runner", "PyQt6"} <= found


def test_no_module_imports_a_private_name_of_another():
    offences = []
    for path in _sources():
        for target, names, line in _imports(path):
            if not target.startswith("ser_live"):
                continue
            private_module = any(part.startswith("_") and not part.endswith("__") for part in target.split("."))
            private_names = [n for n in names if n.startswith("_") and n != "__version__"]
            if private_module or (private_names and target != _module_name(path)):
                offences.append(f"{path.relative_to(REPO)}:{line}: {target} {private_names}")
    assert not offences, "\n".join(offences)


def test_the_two_front_ends_never_import_each_other():
    offences = []
    for path in _sources():
        module = _module_name(path)
        for target, _names, line in _imports(path):
            gui_to_console = module.startswith("ser_live.gui") and target in ("ser_live.cli", "ser_live.console")
            console_to_gui = module == "ser_live.console" and target.startswith("ser_live.gui")
            if gui_to_console or console_to_gui:
                offences.append(f"{path.relative_to(REPO)}:{line}: imports {target}")
    assert not offences, "\n".join(offences)


def test_result_types_and_writers_load_without_the_model_stack():
    code = ("import sys, ser_live.results, ser_live.output, ser_live.app, ser_live.errors; "
            "print(sorted(m for m in ('numpy', 'librosa', 'sklearn', 'ser_live.model', 'ser_live.pipeline') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), check=True)
    assert out.stdout.strip() == "[]"


def test_every_module_says_what_it_owns_in_one_line():
    for path in _sources():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"{path.relative_to(REPO)} has no docstring"
        assert doc.splitlines()[0].strip().endswith((".", ":")), f"{path.relative_to(REPO)}: {doc.splitlines()[0]}"


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports when it runs (at the top or inside functions alike)."""
    modules = {_module_name(path) for path in _sources()}
    graph: dict[str, set[str]] = {}
    for path in _sources():
        edges = set()
        for target, _names, _line in _imports(path, runtime_only=True):
            while target and target not in modules:  # "from .x import name": the module is x
                target = target.rpartition(".")[0]
            if target and target != _module_name(path) and not _is_package(target):
                edges.add(target)
        graph[_module_name(path)] = edges
    return graph


def _is_package(name: str) -> bool:
    return (REPO / Path(*name.split(".")) / "__init__.py").is_file()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    """Data flows one way: no module imports, even inside a function, a module that imports it back."""
    assert _cycles(_import_graph()) == []
