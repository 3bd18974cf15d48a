"""Delivering one outbox row: claim it (an advisory lock and a compare-and-set lease, so two workers never send the
same row at once and a dead worker's row is taken over), one attempt through its transport, the attempt logged and
the outcome written fenced by the attempt number (delivered, due again with backoff, or failed for good)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from itsm import databases, metrics
from itsm.models import DeliveryAttempt, Notification
from itsm.notifiers import email, slack, webhook
from itsm.notifiers.base import DeliveryError, Message, PermanentError, Sent, TransientError
from itsm.services.notification_channels import signing_secrets

logger = logging.getLogger(__name__)

Channel = Notification.Channel
Status = Notification.Status
TRANSPORTS = {Channel.EMAIL: email.send, Channel.WEBHOOK: webhook.send, Channel.SLACK: slack.send}

# A claimed row becomes due again after this long, in case its worker died mid-attempt. Far above the longest
# attempt (an HTTP timeout per connection step, or EMAIL_TIMEOUT).
CLAIM_LEASE = timedelta(minutes=5)
# The first key of the advisory lock a worker holds on a row while it attempts it (the second is the row's id).
ATTEMPT_LOCK_NAMESPACE = 0x1B4C_0002


@contextmanager
def _attempt_lock(notification_id: int) -> Iterator[bool | None]:
    """A PostgreSQL session advisory lock on the row while one worker attempts it: True if held, False if another
    worker holds it. PostgreSQL drops the lock when its holder's connection dies, so a killed worker's row can be
    taken over at once. None without PostgreSQL (the embedded mode), where the claim's lease alone protects it."""
    if connection.vendor != "postgresql":
        yield None
        return
    key = [ATTEMPT_LOCK_NAMESPACE, notification_id % (1 << 31)]
    held = bool(_session_fetchone("SELECT pg_try_advisory_lock(%s, %s)", key)[0])
    try:
        yield held
    finally:
        if held:
            _session_fetchone("SELECT pg_advisory_unlock(%s, %s)", key)


def _session_fetchone(statement: str, params: list[Any]) -> Any:
    """On the connection's session; behind a transaction pooler, on this thread's direct session past it."""
    if databases.is_direct():
        return databases.session_fetchone(statement, params)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


def _claim(notification_id: int, *, lock_held: bool | None) -> bool:
    """Claim the row for one attempt: push its due time forward by the lease and count the attempt. A pending row
    is claimed when it is due, or, when no live worker holds its lock, when an attempt it counts was never logged:
    that worker died mid-attempt (a killed pool process or worker) and its redelivered message takes over."""
    now = timezone.now()
    row = Notification.objects.filter(pk=notification_id, status=Status.PENDING).values("attempts", "next_attempt_at")
    current = row.first()
    if current is None:
        return False
    interrupted = (
        bool(lock_held)
        and current["attempts"] > DeliveryAttempt.objects.filter(notification_id=notification_id).count()
    )
    due = current["next_attempt_at"] is not None and current["next_attempt_at"] <= now
    if not due and not interrupted:
        return False
    if interrupted:
        logger.warning(
            "notification %s: attempt %s was interrupted; trying again", notification_id, current["attempts"]
        )
    # Compare-and-set on the attempt count: of two claimers, one wins.
    return bool(
        Notification.objects.filter(pk=notification_id, status=Status.PENDING, attempts=current["attempts"]).update(
            next_attempt_at=now + CLAIM_LEASE, attempts=F("attempts") + 1
        )
    )


def notification_deliver(*, notification_id: int) -> Notification | None:
    """One delivery attempt, if the row is pending, due and not claimed by another worker. Returns the row after
    the attempt, or None when there was nothing to do."""
    with _attempt_lock(notification_id) as held:
        if held is False or not _claim(notification_id, lock_held=held):
            return None
        return _attempt(notification_id)


def _attempt(notification_id: int) -> Notification:
    notification = Notification.objects.select_related("endpoint", "user_channel", "recipient", "incident").get(
        pk=notification_id
    )
    attempt = notification.attempts
    started = time.perf_counter()
    error: DeliveryError | None = None
    sent = Sent()
    try:
        sent = TRANSPORTS[Channel(notification.channel)](_message(notification))
    except DeliveryError as exc:
        error = exc
    except Exception as exc:
        # A bug in a transport still counts as a failed attempt, so the row keeps its bound on attempts.
        logger.exception("notification %s: unexpected error in the %s transport", notification_id, notification.channel)
        error = TransientError(f"{type(exc).__name__}: {exc}")
    duration = time.perf_counter() - started
    finished = timezone.now()
    DeliveryAttempt.objects.create(
        notification=notification,
        attempted_at=finished,
        success=error is None,
        status_code=error.status_code if error else sent.status_code,
        error=str(error or "")[:2000],
        duration_ms=round(duration * 1000),
    )
    metrics.NOTIFICATION_DELIVERY_DURATION.labels(channel=notification.channel).observe(duration)
    changes = _outcome(error, attempt, finished)
    # Fenced by the attempt number: should a worker outlive its lease, its late result does not overwrite the
    # result of the attempt that replaced it.
    Notification.objects.filter(pk=notification_id, status=Status.PENDING, attempts=attempt).update(**changes)
    if changes["status"] == Status.DELIVERED:
        metrics.NOTIFICATIONS_DELIVERED.labels(channel=notification.channel).inc()
    elif changes["status"] == Status.FAILED:
        metrics.NOTIFICATIONS_FAILED.labels(channel=notification.channel).inc()
        logger.warning("notification %s failed for good after %s attempt(s): %s", notification_id, attempt, error)
    notification.refresh_from_db()
    return notification


def _outcome(error: DeliveryError | None, attempt: int, now: datetime) -> dict[str, Any]:
    if error is None:
        return {"status": Status.DELIVERED, "delivered_at": now, "next_attempt_at": None, "last_error": ""}
    message = str(error)[:2000]
    if isinstance(error, PermanentError) or attempt >= settings.ITSM_NOTIFICATION_MAX_ATTEMPTS:
        return {"status": Status.FAILED, "next_attempt_at": None, "last_error": message}
    return {"status": Status.PENDING, "next_attempt_at": now + retry_delay(attempt), "last_error": message}


def retry_delay(attempt: int) -> timedelta:
    """Backoff after the `attempt`-th failed attempt: the base delay, doubled each time, at most an hour."""
    return timedelta(seconds=min(settings.ITSM_NOTIFICATION_RETRY_SECONDS * 2 ** (attempt - 1), 3600))


def _message(notification: Notification) -> Message:
    secret, previous_secret = "", ""
    signed = notification.endpoint or notification.user_channel
    if signed is not None:
        secret, previous_secret = signing_secrets(signed)
    return Message(
        notification_id=notification.pk,
        target=notification.target,
        subject=notification.subject,
        body=notification.body,
        created_at=notification.created_at,
        urgent=notification.urgent,
        payload=dict(notification.payload or {}),
        secret=secret,
        previous_secret=previous_secret,
        html_body=notification.html_body,
        headers={str(name): str(value) for name, value in (notification.headers or {}).items()},
    )
