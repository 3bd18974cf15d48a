"""Two schedulers ticking at the same moment (two Beats, a duplicated message) on real PostgreSQL: the window
ends once, its checks run once, and a failure opens exactly one incident."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from itsm.models import Incident, MaintenanceWindow, Notification
from itsm.services.maintenance_lifecycle import maintenance_tick
from tests.maintenance.conftest import START

pytestmark = pytest.mark.django_db(transaction=True)

Status = MaintenanceWindow.Status


def tick_together(now: datetime, threads: int = 2) -> list[dict[str, Any]]:
    barrier = threading.Barrier(threads)
    summaries: list[dict[str, Any]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            summaries.append(maintenance_tick(now=now))
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not failures, failures
    return summaries


def test_two_ticks_at_the_end_of_a_failing_window_run_its_checks_once_and_open_one_incident(make_window, settings):
    settings.PROMETHEUS_URL = ""  # the promql check fails, for real, every time it runs
    window = make_window(backup_required=False, checks=[{"kind": "promql", "expr": "up"}])
    maintenance_tick(now=START)
    summaries = tick_together(START + timedelta(minutes=30))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    assert window.verification["runs"] == 1
    assert sorted(len(summary["verified"]) for summary in summaries) == [0, 1]
    assert Incident.objects.count() == 1
    assert list(window.incidents.values_list("pk", flat=True)) == list(Incident.objects.values_list("pk", flat=True))


def test_two_ticks_during_the_verification_period_count_as_one_run(make_window):
    window = make_window(backup_required=False, verify_for=timedelta(minutes=2))
    maintenance_tick(now=START)
    maintenance_tick(now=START + timedelta(minutes=30))
    tick_together(START + timedelta(minutes=31))
    window.refresh_from_db()
    assert (window.status, window.verification["runs"]) == (Status.VERIFYING, 2)
    tick_together(START + timedelta(minutes=32))
    window.refresh_from_db()
    assert (window.status, window.verification["runs"]) == (Status.COMPLETED, 3)
    assert window.completed_at == START + timedelta(minutes=32)
    notices = Notification.objects.filter(subject__startswith="Maintenance completed successfully")
    assert notices.count() == 1  # paula, of the service's team, hears it once
