"""The package's shape: no private names across modules, the front-ends apart, result types light to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "ser_live"


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of imports made only for type checkers (``if TYPE_CHECKING:``), which never run."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            lines |= {child.lineno for block in node.body for child in ast.walk(block) if hasattr(child, "lineno")}
    return lines


def _imports(path: Path, *, runtime_only: bool = False, root: Path = REPO) -> list[tuple[str, list[str], int]]:
    """``(module imported, names taken from it, line)`` for every import in one source file, resolved.

    ``runtime_only`` leaves out the imports of ``if TYPE_CHECKING:`` blocks; ``root`` is the folder holding the
    package.
    """
    here = _module_name(path, root)
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
    assert {"ser_live.app.session", "ser_live.results", "ser_live.gui.runner", "PyQt6"} <= found


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


#: The front-ends: the console (and --classify) and the window.
FRONT_ENDS = ("ser_live.cli", "ser_live.gui")
#: What a front-end may import of the package at run time: the app layer, its results and errors, the package's
#: version, and its own modules. Type hints may name the engine's and the model's types (``if TYPE_CHECKING``).
ALLOWED_FOR_FRONT_ENDS = ("ser_live.app", "ser_live.results", "ser_live.errors", "ser_live.__version__")
#: The ``ser-live`` command picks the front-end (the window, unless --print or no display): it alone may start the
#: window's package; the console module never imports it.
LAUNCHER = ("ser_live.cli.main", "ser_live.gui")


def _front_end_offences(sources: list[Path], root: Path = REPO) -> list[str]:
    """Every run-time import by a front-end of something below the app layer, or of the other front-end."""
    offences = []
    for path in sources:
        module = _module_name(path, root)
        own = next((f for f in FRONT_ENDS if module == f or module.startswith(f + ".")), None)
        if own is None:
            continue
        for target, _names, line in _imports(path, runtime_only=True, root=root):
            if not target.startswith("ser_live"):
                continue
            allowed = (target == own or target.startswith(own + ".") or (module, target) == LAUNCHER
                       or any(target == a or target.startswith(a + ".") for a in ALLOWED_FOR_FRONT_ENDS))
            if not allowed:
                offences.append(f"{path.relative_to(root)}:{line}: imports {target}")
    return offences


def test_front_ends_import_only_the_app_layer():
    """The console and the window reach the engine, the model, audio and sinks only through the app layer, and
    never each other."""
    offences = _front_end_offences(_sources())
    assert not offences, "\n".join(offences)


def test_the_front_end_rule_fails_on_an_import_that_breaks_it(tmp_path):
    """The check itself: a front-end module importing the engine directly, or the other front-end, is caught."""
    bad = tmp_path / "ser_live" / "gui" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text('"""A module that breaks the rule."""\n'
                   "from ..engine.monitor import Monitor\nfrom ..cli import main\nfrom ..app.session import Session\n")
    offences = _front_end_offences([bad], root=tmp_path)
    assert offences == ["ser_live/gui/bad.py:2: imports ser_live.engine.monitor",
                        "ser_live/gui/bad.py:3: imports ser_live.cli"]


def test_result_types_and_writers_load_without_the_model_stack():
    code = ("import sys, ser_live.results, ser_live.sinks.writers, ser_live.app.session, ser_live.errors; "
            "print(sorted(m for m in ('numpy', 'librosa', 'sklearn', 'ser_live.model.emotion_model', "
            "'ser_live.engine.monitor') if m in sys.modules))")
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


def test_no_two_modules_share_a_file_name():
    """One name per idea: a module's file name says which, wherever it is imported from."""
    names: dict[str, list[str]] = {}
    for path in _sources():
        if path.name not in ("__init__.py", "__main__.py"):
            names.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}


def test_the_package_is_laid_out_by_stage():
    """The tree reads as the data flows: each stage a package (README, How it works)."""
    stages = {"audio", "dsp", "features", "model", "engine", "sinks", "app", "cli", "gui", "training"}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == stages
    top_level = {p.name for p in PACKAGE.glob("*.py")}
    assert top_level == {"__init__.py", "__main__.py", "errors.py", "results.py", "process.py", "heap.py"}
