"""Maintenance windows against a real Alertmanager (Debian's prometheus-alertmanager) on loopback.

A window's silence is active in Alertmanager while it runs and expired once it completes or is cancelled; an
alert still firing at the end (posted to Alertmanager itself) fails verification and opens exactly one incident,
however many times the scheduler runs again.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from django.utils import timezone

from itsm.models import Incident, MaintenanceWindow, Service
from itsm.services.maintenance import maintenance_create
from itsm.services.maintenance_lifecycle import maintenance_tick, maintenance_transition
from tests.system.processes import ALERTMANAGER, alertmanager_command, base_env, eventually, free_port, http, started

Status = MaintenanceWindow.Status

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        ALERTMANAGER is None,
        reason="prometheus-alertmanager is not installed (apt-get install -y prometheus-alertmanager; .ci/run does)",
    ),
]

# Nothing is delivered anywhere: the test reads Alertmanager's API only.
CONFIG = {"route": {"receiver": "nowhere", "group_wait": "1s"}, "receivers": [{"name": "nowhere"}]}


@pytest.fixture(scope="module")
def alertmanager_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="itsm-am-") as tmp:
        work = Path(tmp)
        (work / "alertmanager.yml").write_text(yaml.safe_dump(CONFIG))
        port = free_port()
        command = alertmanager_command(work / "alertmanager.yml", work / "data", port)
        with started(command, base_env(), work / "alertmanager.log"):
            url = f"http://127.0.0.1:{port}"
            eventually(lambda: _ready(url), 15, "Alertmanager answered /-/ready")
            yield url


def _ready(url: str) -> bool:
    try:
        return http("GET", f"{url}/-/ready", timeout=1)[0] == 200
    except OSError:
        return False


@pytest.fixture
def alertmanager(alertmanager_url: str, settings: Any) -> str:
    settings.ALERTMANAGER_URL = alertmanager_url
    return alertmanager_url


def silences(url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    status, _, found = http("GET", f"{url}/api/v2/silences")
    assert status == 200, found
    return {silence["id"]: silence for silence in found if silence["id"] in ids}


def fire(url: str, alertname: str, service: str) -> None:
    """An alert as Prometheus would send it, straight into Alertmanager; it fires for the next hour."""
    now = datetime.now(tz=timezone.get_current_timezone())
    alert = {
        "labels": {"alertname": alertname, "service": service, "severity": "critical"},
        "annotations": {"summary": f"{alertname} on {service}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }
    status, _, body = http("POST", f"{url}/api/v2/alerts", [alert])
    assert status == 200, body
    eventually(lambda: alerts_of(url, service), 10, f"{alertname} listed by Alertmanager")


def alerts_of(url: str, service: str) -> list[dict[str, Any]]:
    matcher = quote(f'service="{service}"')
    status, _, found = http("GET", f"{url}/api/v2/alerts?filter={matcher}")
    assert status == 200, found
    return list(found)


def window_for(service: Service, agent: Any, **overrides: Any) -> MaintenanceWindow:
    now = timezone.now()
    values: dict[str, Any] = {
        "title": "PostgreSQL minor upgrade",
        "starts_at": now,
        "ends_at": now + timedelta(minutes=30),
        "services": [service],
        "backup_required": False,
        "checks": [{"kind": "no_firing_alerts"}],
        "verify_for": timedelta(0),
    }
    values.update(overrides)
    return maintenance_create(actor=agent, **values)


def test_the_silence_is_active_while_the_window_runs_and_expired_when_it_completes(
    alertmanager, database_service, agent
):
    started_at = time.monotonic()
    fire(alertmanager, "MailQueueLong", "mail-live")  # another service's alert does not hold the window up
    window = window_for(database_service, agent)
    maintenance_tick(now=window.starts_at)
    window.refresh_from_db()
    assert window.status == Status.IN_PROGRESS
    [silence_id] = window.silence_ids
    silence = silences(alertmanager, [silence_id])[silence_id]
    assert silence["status"]["state"] == "active"
    assert silence["matchers"] == [{"name": "service", "value": "database", "isRegex": False, "isEqual": True}]
    assert silence["createdBy"] == "itsm"
    assert f"MW-{window.pk}" in silence["comment"]

    maintenance_tick(now=window.ends_at)
    window.refresh_from_db()
    assert window.status == Status.COMPLETED
    assert window.verification["results"] == [{"kind": "no_firing_alerts", "ok": True}]
    assert window.silence_ids == []
    assert silences(alertmanager, [silence_id])[silence_id]["status"]["state"] == "expired"
    assert time.monotonic() - started_at < 30


def test_the_silence_of_a_window_that_is_cancelled_is_expired(alertmanager, database_service, agent):
    window = window_for(database_service, agent)
    maintenance_tick(now=window.starts_at)
    window.refresh_from_db()
    [silence_id] = window.silence_ids
    assert silences(alertmanager, [silence_id])[silence_id]["status"]["state"] == "active"
    # Aborted while it runs: the silences go at once.
    maintenance_transition(window_id=window.pk, actor=agent, to=Status.CANCELLED)
    window.refresh_from_db()
    assert window.status == Status.CANCELLED
    assert window.silence_ids == []
    assert silences(alertmanager, [silence_id])[silence_id]["status"]["state"] == "expired"


def test_an_alert_still_firing_at_the_end_fails_verification_and_opens_exactly_one_incident(alertmanager, agent, db):
    service = Service.objects.create(name="Search", slug="search-live")
    window = window_for(service, agent, verify_for=timedelta(minutes=5))
    maintenance_tick(now=window.starts_at)
    fire(alertmanager, "SearchDown", "search-live")
    # Silenced while the window runs, but still firing: Alertmanager marks it suppressed by our silence.
    window.refresh_from_db()

    def suppressed() -> list[str]:
        [alert] = alerts_of(alertmanager, "search-live")
        return list(alert["status"]["silencedBy"]) if alert["status"]["state"] == "suppressed" else []

    assert eventually(suppressed, 10, "the alert silenced by the window") == window.silence_ids

    maintenance_tick(now=window.ends_at)
    maintenance_tick(now=window.ends_at)
    maintenance_tick(now=window.ends_at + timedelta(minutes=1))
    maintenance_tick(now=window.ends_at + timedelta(minutes=6))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    [result] = window.verification["results"]
    assert result["ok"] is False
    assert "SearchDown (search-live)" in result["error"]
    incident = Incident.objects.get()
    assert incident.severity == Incident.Severity.HIGH
    assert list(window.incidents.all()) == [incident]
    # The silence is gone, so the alert is active (and pages again through the intake).
    assert eventually(
        lambda: alerts_of(alertmanager, "search-live")[0]["status"]["state"] == "active", 5, "the alert unsilenced"
    )
