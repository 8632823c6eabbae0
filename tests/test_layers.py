"""Imports run downward (docs/architecture.md): import-linter's contracts in pyproject.toml, which `make test` runs
before pytest, catch a wrong-way import; and the import graph read from the source, imports inside functions
included, has no cycle between modules and none between packages."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src"


def _modules(src: Path, root: str) -> dict[str, Path]:
    """Every module under `src/<root>` by dotted name (a package by its `__init__`); links followed (conf/)."""
    found = {}
    for folder, dirs, files in os.walk(src / root, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        package = ".".join(Path(folder).relative_to(src).parts)
        for name in files:
            if name.endswith(".py"):
                found[package if name == "__init__.py" else f"{package}.{name[:-3]}"] = Path(folder) / name
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules (`a.b.func` -> `a.b`)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def import_graph(src: Path, root: str) -> dict[str, set[str]]:
    """module -> the modules of `root` it imports, read from the AST: every `import` statement counts, at the top,
    inside functions or under `if TYPE_CHECKING`. `from p import x` is the module p.x when that is one, else p."""
    modules = _modules(src, root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: `from ..low.a import f`
                    anchor = package.rsplit(".", node.level - 1)[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[module] |= {t for n in targets if (t := _resolve(n, modules)) not in (None, module)}
    return graph


def find_cycle(graph: dict[str, Iterable[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def package_graph(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The module graph seen at `depth` dotted parts (2: `underpainting.data` ...); modules above it dropped."""

    def cut(m: str) -> str | None:
        parts = m.split(".")
        return ".".join(parts[:depth]) if len(parts) >= depth else None

    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        if (pa := cut(a)) is not None:
            out.setdefault(pa, set()).update(p for b in targets if (p := cut(b)) not in (None, pa))
    return out


def test_no_import_cycle_between_modules_or_packages():
    graph = import_graph(SRC, "underpainting")
    assert "underpainting.conf" in graph and "underpainting.xray.__main__" in graph
    assert "underpainting.train" in graph["underpainting.xray.cli"], "imports inside functions count"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle)
    for depth in (
        2,
        3,
    ):  # underpainting.data <-> underpainting.models; underpainting.data.xray <-> .data.images
        cycle = find_cycle(package_graph(graph, depth))
        assert cycle is None, "import cycle between packages: " + " -> ".join(cycle)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_graph_sees_lazy_and_relative_imports_and_finds_their_cycle(tmp_path):
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low/__init__.py": "",
            "pkg/low/a.py": "def f():\n    from pkg.high import b  # lazy, upward\n",
            "pkg/high/__init__.py": "",
            "pkg/high/b.py": "from ..low.a import f\nimport os\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.low.a"] == {"pkg.high.b"} and graph["pkg.high.b"] == {"pkg.low.a"}
    assert find_cycle(graph) == ["pkg.high.b", "pkg.low.a", "pkg.high.b"]
    assert find_cycle(package_graph(graph, 2)) == ["pkg.high", "pkg.low", "pkg.high"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def _lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_source_keeps_the_import_contracts():
    """What `make test` runs first: the layers and no-cycle contracts of pyproject.toml hold."""
    pytest.importorskip("importlinter", reason="import-linter (the dev extra) checks the layers")
    ok = _lint_imports(ROOT, SRC)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-2000:]
    assert "0 broken" in ok.stdout


def test_import_linter_fails_on_a_wrong_way_import(tmp_path):
    """An import upward, hidden inside a function, breaks the layers contract, which names it."""
    pytest.importorskip("importlinter", reason="import-linter (the dev extra) checks the layers")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(SRC / "underpainting", tmp_path / "src" / "underpainting", symlinks=True)
    (tmp_path / "conf").symlink_to(ROOT / "conf")  # the package's conf link is relative: ../../conf
    upward = "def newest_run():\n    from underpainting.train import run\n\n    return run\n"
    (tmp_path / "src" / "underpainting" / "data" / "upward.py").write_text(upward)
    broken = _lint_imports(tmp_path, tmp_path / "src")
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert "underpainting.data is not allowed to import underpainting.train" in broken.stdout
    assert "underpainting.data.upward -> underpainting.train" in broken.stdout
