"""runenv's modules import in any order, and no module-level import cycle exists in runenv/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "runenv"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports run when the module loads: top level, or in a top-level if/try (not `if TYPE_CHECKING`)."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending[:0] = node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending[:0] = node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def imported_modules(name: str, path: Path) -> set[str]:
    """The runenv modules `name` imports while it loads (`from pkg import sub` counts as importing pkg.sub)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in MODULES else base)
    return {t for t in targets if t in MODULES and t != name}


def import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, …, a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_module_level_import_cycle_in_runenv():
    graph = import_graph()
    assert graph["runenv.publish.targets.registry"] >= {"runenv.publish.targets.oci", "runenv.publish.targets.base"}
    assert "runenv.publish.targets.registry" not in graph["runenv.publish.targets.oci"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_sees_a_cycle_through_from_imports(tmp_path):
    """The check above can fail: a two-module cycle written with `from pkg import sub` is reported."""
    graph = {"runenv.a": {"runenv.b"}, "runenv.b": {"runenv.c"}, "runenv.c": {"runenv.a"}, "runenv.d": set()}
    assert find_cycle(graph) == ["runenv.a", "runenv.b", "runenv.c", "runenv.a"]
    tree = ast.parse("from runenv.publish import targets\nif TYPE_CHECKING:\n    import runenv.build.pipeline\n")
    assert [type(n).__name__ for n in module_level_imports(tree)] == ["ImportFrom"]


def test_every_module_imports_first_in_a_fresh_interpreter():
    """Each runenv module imported before any other (its own cycle would fail here with ImportError)."""
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m == 'runenv' or m.startswith('runenv.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    names = [n for n in MODULES if n != "runenv.__main__"]  # __main__ runs the CLI
    proc = subprocess.run([sys.executable, "-c", script, *names], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize("module", ["runenv.config", "runenv.cli.commands.run"])
def test_loading_a_config_or_running_a_runtime_loads_no_http_client(module: str) -> None:
    """Parsing configs (and `runenv run`) never needs httpx: it loads only where something is downloaded."""
    probe = f"import sys, {module}; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False"]
