"""The daily cleanup deletes, per kind, only what is older than its retention, in batches, and keeps the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken

from itsm.models import Alert, DeliveryAttempt, IdempotencyKey, JobRun, Notification, TicketNotice
from itsm.services.cleanup import cleanup_old_records
from itsm.tasks.cleanup import cleanup
from tests.factories import make_ticket
from tests.jobs.conftest import MONDAY, ran

pytestmark = pytest.mark.django_db

NOW = MONDAY.replace(hour=3, minute=15)
DAY = timedelta(days=1)


def alert(name: str, status: str, last_received_days_ago: float) -> Alert:
    at = NOW - timedelta(days=last_received_days_ago)
    return Alert.objects.create(
        fingerprint=name, alertname=name, status=status, received_at=at, last_received_at=at, labels={}
    )


def notification(status: str, days_ago: float, attempts: int = 1) -> Notification:
    row = Notification.objects.create(
        channel="email", target="a@example.com", subject="s", status=status, created_at=NOW - timedelta(days=days_ago)
    )
    for _ in range(attempts):
        DeliveryAttempt.objects.create(notification=row, attempted_at=row.created_at, success=True)
    return row


def session(expired_days_ago: float) -> str:
    store = SessionStore()
    store["k"] = "v"
    store.create()
    Session.objects.filter(session_key=store.session_key).update(expire_date=NOW - timedelta(days=expired_days_ago))
    return str(store.session_key)


def token(user, expires_in: timedelta) -> str:
    row, _ = AuthToken.objects.create(user=user, expiry=expires_in)
    return str(row.pk)


def idempotency_key(user, key: str, expires_in: timedelta) -> IdempotencyKey:
    return IdempotencyKey.objects.create(
        user=user,
        key=key,
        method="POST",
        path="/api/v1/tickets/",
        fingerprint="0" * 64,
        created_at=NOW - DAY,
        locked_at=NOW - DAY,
        expires_at=NOW + expires_in,
    )


def test_each_kind_loses_only_what_is_older_than_its_retention(requester, settings):
    settings.ITSM_RETENTION_DAYS = {"alerts": 30, "notifications": 10, "job_runs": 30, "tokens": 0, "sessions": 2}
    settings.ITSM_AUDIT_RETENTION_DAYS = 36500  # the audit trail's own test is tests/audit/test_retention.py
    old_resolved, kept_resolved = alert("old", "resolved", 31), alert("recent", "resolved", 29)
    old_firing = alert("still-firing", "firing", 90)
    old_delivered, kept_delivered = notification("delivered", 11, attempts=2), notification("delivered", 9)
    old_failed = notification("failed", 90)
    ticket = make_ticket(requester)
    TicketNotice.objects.filter(ticket=ticket).update(expanded_at=NOW - 11 * DAY)  # written 11 days ago: deleted
    pending = TicketNotice.objects.create(ticket=ticket, event="resolved", created_at=NOW - 90 * DAY)
    kept_notice = TicketNotice.objects.create(ticket=ticket, event="closed", created_at=NOW, expanded_at=NOW - DAY)
    old_run, kept_run = ran("scan_sla", NOW - 31 * DAY), ran("scan_sla", NOW - 29 * DAY)
    kept_sessions = {session(-1), session(1)}  # live, and expired a day ago (retention 2 days)
    session(3)
    idempotency_key(requester, "expired", -timedelta(seconds=1))
    live_key = idempotency_key(requester, "live", timedelta(hours=1))
    with time_machine.travel(NOW, tick=False):
        expired_token, live_token = token(requester, -timedelta(seconds=1)), token(requester, DAY)

        detail = cleanup_old_records(batch_size=1)

    assert detail["deleted"] == {
        "alerts": 1,
        "notifications": 1,
        "delivery_attempts": 2,
        "ticket_notices": 2,
        "job_runs": 1,
        "tokens": 1,
        "sessions": 1,
        "audit_log": 0,
        "idempotency_keys": 1,
        "login_throttles": 0,
    }
    assert list(IdempotencyKey.objects.values_list("pk", flat=True)) == [live_key.pk]
    assert detail["retention_days"] == {**settings.ITSM_RETENTION_DAYS, "audit_log": settings.ITSM_AUDIT_RETENTION_DAYS}
    assert set(Alert.objects.values_list("pk", flat=True)) == {kept_resolved.pk, old_firing.pk}
    assert not Alert.objects.filter(pk=old_resolved.pk).exists()
    assert set(Notification.objects.values_list("pk", flat=True)) == {kept_delivered.pk, old_failed.pk}
    assert not DeliveryAttempt.objects.filter(notification_id=old_delivered.pk).exists()
    assert set(TicketNotice.objects.values_list("pk", flat=True)) == {pending.pk, kept_notice.pk}  # never a pending one
    assert set(JobRun.objects.values_list("pk", flat=True)) == {kept_run.pk}
    assert not JobRun.objects.filter(pk=old_run.pk).exists()
    assert set(AuthToken.objects.values_list("pk", flat=True)) == {live_token}
    assert expired_token != live_token
    assert set(Session.objects.values_list("session_key", flat=True)) == kept_sessions


def test_the_newest_run_and_newest_success_of_every_job_survive_however_old():
    older = ran("backup_restore_drill", NOW - 90 * DAY)
    success = ran("backup_restore_drill", NOW - 60 * DAY)
    failure = ran("backup_restore_drill", NOW - 40 * DAY, status="failed")
    with time_machine.travel(NOW, tick=False):
        assert cleanup_old_records()["deleted"]["job_runs"] == 1
    assert set(JobRun.objects.values_list("pk", flat=True)) == {success.pk, failure.pk}
    assert not JobRun.objects.filter(pk=older.pk).exists()


def test_deletes_go_in_batches_of_the_given_size():
    for days in range(40, 45):
        alert(f"a{days}", "resolved", days)
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as queries:
        assert cleanup_old_records(batch_size=2)["deleted"]["alerts"] == 5
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "itsm_alert"')]
    assert len(deletes) == 3  # 2 + 2 + 1


def test_a_negative_retention_fails_the_run_instead_of_deleting_everything(settings):
    settings.ITSM_RETENTION_DAYS = {**settings.ITSM_RETENTION_DAYS, "alerts": -1}
    kept = alert("recent", "resolved", 1)
    with time_machine.travel(NOW, tick=False), pytest.raises(ValueError, match="ITSM_RETENTION_DAYS_ALERTS"):
        cleanup()
    assert Alert.objects.filter(pk=kept.pk).exists()
    run = JobRun.objects.get(job="cleanup")
    assert run.status == JobRun.Status.FAILED
    assert "ITSM_RETENTION_DAYS_ALERTS" in run.detail["error"]


def test_the_cleanup_job_records_its_counts_and_runs_once_per_day(requester):
    with time_machine.travel(NOW, tick=False):
        token(requester, -timedelta(seconds=1))
        detail = cleanup()
        assert detail is not None
        assert detail["deleted"]["tokens"] == 1
        token(requester, -timedelta(seconds=1))
    with time_machine.travel(NOW + timedelta(hours=5), tick=False):
        assert cleanup() is None  # a second Beat, or a duplicated message, the same day
    assert AuthToken.objects.count() == 1
    run = JobRun.objects.get(job="cleanup")
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.detail["deleted"]["tokens"] == 1
    assert run.duration_seconds is not None
    assert run.finished_at is not None
