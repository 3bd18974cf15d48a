"""Maintenance windows: a team that owns a service, and a window factory with the issue's defaults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from itsm.models import MaintenanceWindow, Service, Team
from itsm.services.maintenance import maintenance_create
from tests.factories import make_user

START = datetime.fromisoformat("2030-03-03T02:00:00+00:00")  # a Sunday


@pytest.fixture(autouse=True)
def _backup_paths(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_S3_BUCKET = ""


@pytest.fixture(autouse=True)
def _api_health(api_health_served: str) -> None:
    """Every window's default api_health check asks a real API over HTTP."""


@pytest.fixture
def database_service(db: Any) -> Service:
    team = Team.objects.create(name="Platform", slug="platform")
    team.members.add(make_user("paula", "agent"))
    return Service.objects.create(name="Database", slug="database", team=team)


@pytest.fixture
def make_window(agent: Any, database_service: Service) -> Callable[..., MaintenanceWindow]:
    def make(**overrides: Any) -> MaintenanceWindow:
        values: dict[str, Any] = {
            "title": "PostgreSQL minor upgrade",
            "starts_at": START,
            "ends_at": START + timedelta(minutes=30),
            "services": [database_service],
            "checks": [{"kind": "api_health"}],
        }
        values.update(overrides)
        return maintenance_create(actor=agent, **values)

    return make


@pytest.fixture
def as_agent_at_any_time(agent: Any) -> APIClient:
    """Signed in without a token, so that it still works when a test travels years ahead."""
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def broken_backups(settings: Any, tmp_path: Path) -> None:
    """Backups cannot be written: BACKUP_DIR is a file, so the dump fails for real."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.BACKUP_DIR = blocker / "backups"
