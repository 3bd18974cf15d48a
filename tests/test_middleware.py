"""itsm/middleware.py: the request id, read-only mode and the database-down guard, below the API in the layering."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

import itsm.middleware

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_the_middleware_module_imports_nothing_from_the_api():
    assert not [name for name in imported_modules(Path(itsm.middleware.__file__)) if name.startswith("itsm.api")]


def test_settings_name_the_middleware_where_it_lives_and_no_middleware_is_left_in_the_api():
    ours = [name for name in settings.MIDDLEWARE if name.startswith("itsm.")]
    assert ours == [
        "itsm.middleware.RequestIdMiddleware",
        "itsm.middleware.ReadOnlyModeMiddleware",
        "itsm.middleware.AuditMiddleware",
        "itsm.middleware.DatabaseUnavailableMiddleware",
        "itsm.middleware.ReplicaWritesMiddleware",
    ]
    assert not (ROOT / "itsm" / "api" / "readonly.py").exists()
    assert "Middleware" not in (ROOT / "itsm" / "api" / "errors.py").read_text()
