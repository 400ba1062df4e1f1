"""The package boundaries of DESIGN.md, checked two ways: statically and at import time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).parents[1]
# vispy's colour module comes in with napari's colormaps; it is not Qt. Qt bindings are.
QT_PREFIXES = ("PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "superqt", "napari._qt", "napari.qt")


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "statement",
    [
        "import platestream",
        "import platestream.config",
        "import platestream.layering",
        "import platestream.schemas",
        "import platestream.cli; platestream.cli.build_parser()",
        "import platestream.viewer.manager",  # pipelines and the CLI import it, GUI-less
        "import platestream.viewer.layer_model",
    ],
)
def test_importing_never_imports_qt(statement: str) -> None:
    loaded = _modules_after_import(statement)
    qt = sorted(m for m in loaded if m.split(".")[0] in QT_PREFIXES or m.startswith(QT_PREFIXES))
    assert not qt, f"{statement!r} imported Qt: {qt[:5]}"


def test_layering_imports_only_config_and_numpy() -> None:
    loaded = _modules_after_import("import platestream.layering")
    ours = {m for m in loaded if m.startswith("platestream.")}
    assert all(m.startswith(("platestream.config", "platestream.layering")) for m in ours), ours
    assert "zmq" not in loaded


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [exe, "--config", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("platestream")
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    """Every import counts, lazy ones inside functions included: no module imports, directly
    or not, a module that imports it back."""
    assert _cycles(_import_graph()) == []


def test_private_modules_are_imported_only_inside_their_package() -> None:
    """``platestream.x._name`` is ``x``'s own business; others use what ``x`` exports."""
    offenders = []
    for importer, imported in sorted(_import_graph().items()):
        for module in sorted(imported):
            parts = module.split(".")
            private = [i for i, part in enumerate(parts) if part.startswith("_") and i > 0]
            if not private or parts[private[0]] == "__main__":
                continue
            owner = ".".join(parts[: private[0]])
            if importer != owner and not importer.startswith(owner + "."):
                offenders.append(f"{importer} -> {module}")
    assert offenders == []
