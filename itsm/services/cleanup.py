"""Deleting what has outlived its retention, in small batches so that no delete holds locks for long.

Retention per kind (days, ITSM_RETENTION_DAYS_*): resolved alerts (from their last delivery), delivered
notifications with their delivery attempts (from their creation), job runs (from their slot; the newest run and
the newest successful run of each job are always kept, the job list and the dead-man switch read them), and
expired API tokens and sessions (from their expiry), and expired Idempotency-Key records (ITSM_IDEMPOTENCY_KEY_TTL_HOURS
after their first use), and failed-sign-in counts a window of quiet after their last attempt, and the audit trail's
rows (ITSM_AUDIT_RETENTION_DAYS after the change they record). Firing alerts, failed or pending notifications and
live tokens are never deleted here.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Max, Model, QuerySet
from django.utils import timezone
from knox.models import AuthToken

from itsm.models import Alert, JobRun, Notification, TicketNotice
from itsm.services.idempotency import delete_expired_idempotency_keys
from itsm.services.logins import login_throttles_forget

BATCH_SIZE = 1000
KINDS = ("alerts", "notifications", "job_runs", "tokens", "sessions")


def retention_days() -> dict[str, int]:
    """The retention of each kind, from settings; a negative number is a configuration mistake, not "keep less"."""
    days = {kind: int(settings.ITSM_RETENTION_DAYS[kind]) for kind in KINDS}
    days["audit_log"] = int(settings.ITSM_AUDIT_RETENTION_DAYS)
    wrong = [kind for kind, value in days.items() if value < 0]
    if wrong:
        names = ", ".join(_variable(kind) for kind in wrong)
        raise ValueError(f"{names} must be 0 or more days.")
    return days


def _variable(kind: str) -> str:
    return "ITSM_AUDIT_RETENTION_DAYS" if kind == "audit_log" else f"ITSM_RETENTION_DAYS_{kind.upper()}"


def cleanup_old_records(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Delete each kind's records older than its retention; returns the counts per kind and the retention used."""
    now = now or timezone.now()
    days = retention_days()

    def cutoff(kind: str) -> datetime:
        return now - timedelta(days=days[kind])

    alerts = Alert.objects.filter(status=Alert.Status.RESOLVED, last_received_at__lt=cutoff("alerts"))
    notifications = Notification.objects.filter(
        status=Notification.Status.DELIVERED, created_at__lt=cutoff("notifications")
    )
    # A ticket notice once its e-mails are written (they are kept as notifications), by the same retention.
    notices = TicketNotice.objects.filter(expanded_at__lt=cutoff("notifications"))
    job_runs = JobRun.objects.filter(slot__lt=cutoff("job_runs")).exclude(pk__in=_newest_runs())
    tokens = AuthToken.objects.filter(expiry__lt=cutoff("tokens"))
    sessions = Session.objects.filter(expire_date__lt=cutoff("sessions"))
    audit_log = LogEntry.objects.filter(timestamp__lt=cutoff("audit_log"))

    deleted: Counter[str] = Counter()
    deleted.update(_delete_in_batches(alerts, batch_size))
    deleted.update(_delete_in_batches(notifications, batch_size))
    deleted.update(_delete_in_batches(notices, batch_size))
    deleted.update(_delete_in_batches(job_runs, batch_size))
    deleted.update(_delete_in_batches(tokens, batch_size))
    deleted.update(_delete_in_batches(sessions, batch_size))
    deleted.update(_delete_in_batches(audit_log, batch_size))
    counts = {
        "alerts": deleted["itsm.Alert"],
        "notifications": deleted["itsm.Notification"],
        "delivery_attempts": deleted["itsm.DeliveryAttempt"],
        "ticket_notices": deleted["itsm.TicketNotice"],
        "job_runs": deleted["itsm.JobRun"],
        "tokens": deleted["knox.AuthToken"],
        "sessions": deleted["sessions.Session"],
        "audit_log": deleted["auditlog.LogEntry"],
        "idempotency_keys": delete_expired_idempotency_keys(now=now, batch_size=batch_size),
        # Failed sign-ins a window of quiet ago are forgotten anyway (itsm.services.logins).
        "login_throttles": login_throttles_forget(
            before=now - timedelta(seconds=settings.ITSM_LOGIN_FAILURE_WINDOW_SECONDS), now=now
        ),
    }
    return {"deleted": counts, "retention_days": days}


def _newest_runs() -> list[int]:
    newest = JobRun.objects.order_by().values("job").annotate(last=Max("id")).values_list("last", flat=True)
    newest_ok = (
        JobRun.objects.filter(status=JobRun.Status.SUCCEEDED)
        .order_by()
        .values("job")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
    )
    return [*newest, *newest_ok]


def _delete_in_batches(queryset: QuerySet[Model], batch_size: int) -> Counter[str]:
    """Delete by primary key, `batch_size` rows per transaction; returns the rows deleted per model (cascades
    included, e.g. the delivery attempts of a notification)."""
    model = queryset.model
    total: Counter[str] = Counter()
    while True:
        keys = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not keys:
            return total
        with transaction.atomic():
            _, per_model = model._default_manager.filter(pk__in=keys).delete()
        total.update(per_model)
        if len(keys) < batch_size:
            return total
