"""The import rule of docs/architecture.md ("Where things go"), read from the source with `ast`: layers point down
(models → queries and services → api, portal, admin, tasks, commands), services import only services below them (no
loop), no import hides inside a function to dodge a loop, and no module grows past 450 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "itsm"
MAX_LINES = 450

EVERY_LAYER = (
    "itsm.models",
    "itsm.queries",
    "itsm.services",
    "itsm.api",
    "itsm.admin",
    "itsm.tasks",
    "itsm.management",
    "itsm.portal",
)
# What each layer must never import: everything above it.
ABOVE = {
    "itsm.models": (
        "itsm.services",
        "itsm.queries",
        "itsm.api",
        "itsm.admin",
        "itsm.tasks",
        "itsm.management",
        "itsm.portal",
    ),
    "itsm.queries": ("itsm.services", "itsm.api", "itsm.admin", "itsm.tasks", "itsm.management", "itsm.portal"),
    "itsm.services": ("itsm.api", "itsm.admin", "itsm.tasks", "itsm.management", "itsm.portal"),
    # Read routing and direct sessions sit beside the database connections: they know no layer of the platform.
    "itsm.databases": EVERY_LAYER,
    "itsm.replica": EVERY_LAYER,
    "itsm.backup": ("itsm.services", "itsm.api", "itsm.admin", "itsm.tasks", "itsm.management", "itsm.portal"),
    "itsm.notifiers": ("itsm.services", "itsm.api", "itsm.admin", "itsm.tasks", "itsm.management", "itsm.portal"),
    # Mail machinery knows no records at all: the services hand it what it needs.
    "itsm.mail": EVERY_LAYER,
    # The faces: HTTP (the API and the portal), the admin, Celery; none imports another.
    "itsm.api": ("itsm.admin", "itsm.tasks", "itsm.management", "itsm.portal"),
    "itsm.portal": ("itsm.api", "itsm.admin", "itsm.tasks", "itsm.management"),
    "itsm.admin": ("itsm.api", "itsm.management", "itsm.portal"),
    # The admin site beside the admin package, importing none of it (Django builds the site on the first
    # registration: see its docstring).
    "itsm.admin_site": ("itsm.api", "itsm.admin", "itsm.tasks", "itsm.management", "itsm.portal"),
    "itsm.tasks": ("itsm.api", "itsm.admin", "itsm.management", "itsm.portal"),
}
# Imports inside a function that are there for a reason other than a loop: AppConfig.ready() registers the
# system checks, Celery's signal handlers and the token receivers of itsm.sign_in once the app registry is ready.
DEFERRED_ON_PURPOSE = {
    ("itsm.apps", "itsm.audit"),
    ("itsm.apps", "itsm.beat"),
    ("itsm.apps", "itsm.celery_metrics"),
    ("itsm.apps", "itsm.checks"),
    ("itsm.apps", "itsm.sign_in"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}


def imported(tree: ast.AST, known: dict[str, Path]) -> Iterator[tuple[str, ast.stmt]]:
    """(module of the project, node) for each import in `tree`: `from itsm.x import y` names itsm.x.y when that is
    a module of the project, else itsm.x."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("itsm"):
                    yield alias.name, node
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("itsm") and not node.level:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield (candidate if candidate in known else node.module), node


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges[name] = {target for target, _ in imported(tree, known) if target in known and target != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_project_imports_another_in_a_loop():
    assert cycles(graph()) == []


def test_every_layer_imports_only_the_layers_below_it():
    wrong = [
        f"{source} imports {target}"
        for source, targets in graph().items()
        for layer, forbidden in ABOVE.items()
        if source == layer or source.startswith(f"{layer}.")
        for target in targets
        if target.startswith(forbidden)
    ]
    assert wrong == []


def test_no_import_hides_inside_a_function():
    known = modules()
    hidden = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for body_node in function.body:
                for target, node in imported(body_node, known):
                    if (name, target) not in DEFERRED_ON_PURPOSE:
                        hidden.append(f"{name}:{node.lineno} imports {target} inside {function.name}()")
    assert hidden == []


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_loop_finder_finds_loops(edges, expected):
    assert cycles(edges) == expected
