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


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module imported, names taken from it, line)`` for every import in one source file, resolved."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            if not node.module:  # "from . import x": x is a module of the package
                out.extend((f"{target}.{name}", [], node.lineno) for name in names)
            else:
                out.append((target, names, node.lineno))
    return out


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
