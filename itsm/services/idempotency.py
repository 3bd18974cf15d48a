"""Idempotency keys: take a key before the work, complete it with the work's response, forget it after its TTL.

The semantics follow the IETF draft "The Idempotency-Key HTTP Header Field" and Stripe: a key belongs to one user;
the first request with it does the work and its response (success or 4xx) is stored; a retry with the same body
gets that response again; a retry while the first is still running is refused (409); the same key with another
body or on another endpoint is refused (422). A 5xx or a crash stores nothing, so the client can simply retry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from itsm.exceptions import DomainError
from itsm.models import IdempotencyKey

# An attempt that has held its key this long is dead (gunicorn kills a request after ITSM_GUNICORN_TIMEOUT, 30 s
# by default): a retry may take the key over instead of getting 409 until the key expires.
STALE_AFTER = timedelta(minutes=2)
BATCH_SIZE = 1000


class KeyInUse(DomainError):
    """Another request with this key is still running (HTTP 409)."""


class KeyMismatch(DomainError):
    """The key was used for another request: another body or another endpoint (HTTP 422)."""


def request_fingerprint(data: Any) -> str:
    """SHA-256 of the canonical JSON of a request body: sorted keys, no whitespace, UTF-8."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_ttl() -> timedelta:
    return timedelta(hours=int(settings.ITSM_IDEMPOTENCY_KEY_TTL_HOURS))


def idempotency_claim(
    *, user: Any, key: str, method: str, path: str, fingerprint: str, now: datetime | None = None
) -> IdempotencyKey:
    """The key's row: new (in_progress, owned by the caller, committed at once) or completed (to be replayed).

    Raises KeyMismatch when the key was used for another request and KeyInUse while another attempt holds it.
    """
    now = now or timezone.now()
    for _ in range(3):
        try:
            # Its own transaction, committed before the work starts: a concurrent duplicate blocks on the unique
            # constraint until this commits, then fails to insert and sees the row in progress.
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    user=user,
                    key=key,
                    method=method,
                    path=path,
                    fingerprint=fingerprint,
                    created_at=now,
                    locked_at=now,
                    expires_at=now + idempotency_ttl(),
                )
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(user=user, key=key).first()
        if existing is None:  # released or deleted since: try again
            continue
        if existing.expires_at <= now:
            IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if (existing.method, existing.path) != (method, path):
            raise KeyMismatch(
                f"This Idempotency-Key was used for {existing.method} {existing.path}; use a new key for each request."
            )
        if existing.fingerprint != fingerprint:
            raise KeyMismatch(
                "This Idempotency-Key was used with a different request body; use a new key for each request."
            )
        if existing.state == IdempotencyKey.State.COMPLETED:
            return existing
        if existing.locked_at <= now - STALE_AFTER and _take_over(existing, now):
            return existing
        raise KeyInUse("A request with this Idempotency-Key is still being processed. Retry shortly.")
    raise KeyInUse("A request with this Idempotency-Key is still being processed. Retry shortly.")


def _take_over(record: IdempotencyKey, now: datetime) -> bool:
    """Compare-and-set: only one retry takes a dead attempt's key."""
    taken = IdempotencyKey.objects.filter(
        pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
    ).update(locked_at=now)
    if taken:
        record.locked_at = now
    return bool(taken)


def idempotency_complete(*, record: IdempotencyKey, status: int, body: Any, headers: dict[str, str]) -> IdempotencyKey:
    """Store the response. Call it inside the work's transaction, so the work and the stored response commit together.

    Raises KeyInUse if the attempt lost its key to a retry that took it over (the caller's work must roll back).
    """
    stored = IdempotencyKey.objects.filter(
        pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
    ).update(state=IdempotencyKey.State.COMPLETED, response_status=status, response_body=body, response_headers=headers)
    if not stored:
        raise KeyInUse("This request took too long and a retry with the same Idempotency-Key took over.")
    record.state = IdempotencyKey.State.COMPLETED
    record.response_status, record.response_body, record.response_headers = status, body, headers
    return record


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Forget an attempt that produced no stored response (a 5xx or an exception), so a retry does the work."""
    IdempotencyKey.objects.filter(
        pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
    ).delete()


def delete_expired_idempotency_keys(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Delete the keys past their expiry, in batches; returns how many. Run daily by the cleanup job."""
    now = now or timezone.now()
    deleted = 0
    while True:
        batch = list(IdempotencyKey.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        count, _ = IdempotencyKey.objects.filter(pk__in=batch).delete()
        deleted += count
