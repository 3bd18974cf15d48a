"""Notifications through an outbox: rows written in the caller's transaction, delivered by workers.

- `notify` writes one `Notification` per destination inside the caller's transaction and queues its delivery
  after commit, waiting on the broker for at most a quarter of a second (itsm/services/publisher.py). A rolled-back
  change sends nothing; a broker that is down or frozen after commit loses nothing, because the row stays
  pending and the relay picks it up.
- `notification_deliver` (in services/notification_delivery.py) claims a due row with a compare-and-set update
  under an advisory lock (two workers never send one row at once, and the redelivered message of a worker killed
  mid-attempt takes over at once instead of waiting for the lease), makes one attempt, logs it, and either marks
  the row delivered, schedules the next attempt with exponential backoff, or marks it failed (a permanent error,
  or the last allowed attempt).
- `notification_relay` (Beat, every minute) queues every due pending row: first deliveries whose message never
  reached the broker, retries whose backoff ran out, rows whose worker died. It delivers them itself when the
  broker refuses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from itsm.exceptions import NotPermitted, NotReady
from itsm.models import (
    Event,
    Incident,
    Notification,
    NotificationChannel,
    Service,
    SuppressedAddress,
    Ticket,
    WebhookEndpoint,
)
from itsm.roles import is_staff_role
from itsm.services.events import event_record
from itsm.services.notification_delivery import notification_deliver
from itsm.services.publisher import publish_soon

logger = logging.getLogger(__name__)

DELIVER_TASK = "itsm.tasks.notifications.deliver_notification"
RELAY_BATCH = 500
# Messages the relay queues are dropped if not picked up by then; the next relay run queues the row again.
RELAY_MESSAGE_EXPIRES = 120
# The relay stops delivering by itself after this long, so that it finishes well within its one-minute slot.
RELAY_INLINE_BUDGET_SECONDS = 40.0

Channel = Notification.Channel
Status = Notification.Status
CHANNEL_WORDS = {Channel.EMAIL: "e-mail", Channel.WEBHOOK: "webhook", Channel.SLACK: "Slack"}


# --- writing to the outbox ---------------------------------------------------------------------------------------


def notify(
    *,
    users: Iterable[Any],
    subject: str,
    body: str,
    incident: Incident | None = None,
    urgent: bool = False,
    include_endpoints: bool = True,
) -> list[Notification]:
    """Tell `users` through their enabled channels (e-mail to their address if they set up none) and, for an
    incident, every enabled admin webhook endpoint of the incident's teams or of all teams. Writes the outbox rows
    and one notification event per row on the incident in the caller's transaction; delivery starts after commit.
    Call it once per occurrence with everyone to tell, so that endpoints get one message."""
    now = timezone.now()
    subject = " ".join(subject.split())[:300]
    people = _unique_active(users)
    rows: list[Notification] = []
    payload = {"incident": _incident_summary(incident)}
    preferences: dict[int, list[NotificationChannel]] = {user.pk: [] for user in people}
    for preference in NotificationChannel.objects.filter(user__in=[user.pk for user in people]).order_by("id"):
        preferences[preference.user_id].append(preference)

    def row(channel: str, target: str, **source: Any) -> Notification:
        return Notification(
            channel=channel,
            target=target,
            subject=subject,
            body=body,
            payload=payload | {"recipient": source["recipient"].get_username() if source.get("recipient") else None},
            incident=incident,
            urgent=urgent,
            status=Status.PENDING,
            next_attempt_at=now,
            created_at=now,
            **source,
        )

    for user in people:
        chosen = preferences[user.pk]
        if not chosen:
            if user.email:
                rows.append(row(Channel.EMAIL, user.email, recipient=user))
            else:
                logger.warning("user %s has no notification channel and no e-mail address", user.pk)
            continue
        rows.extend(
            row(preference.channel, preference.target, recipient=user, user_channel=preference)
            for preference in chosen
            if preference.enabled
        )
    if incident is not None and include_endpoints:
        rows.extend(row(endpoint.kind, endpoint.url, endpoint=endpoint) for endpoint in _endpoints_for(incident))
    if not rows:
        return []
    with transaction.atomic():
        created = Notification.objects.bulk_create(rows)
        if incident is not None:
            Event.objects.bulk_create(
                Event(
                    incident=incident,
                    kind=Event.Kind.NOTIFICATION,
                    field="notification",
                    new_value=str(notification.pk),
                    note=f"{'Urgent ' if urgent else ''}{describe(notification)}: {subject}"[:2000],
                    created_at=now,
                )
                for notification in created
            )
        ids = [notification.pk for notification in created]
        transaction.on_commit(partial(_enqueue_after_commit, ids, urgent=urgent))
    return created


@dataclass(frozen=True)
class Email:
    """One e-mail to one person: its subject, its text and HTML parts, and its thread headers."""

    recipient: Any
    subject: str
    body: str
    html_body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def notify_by_email(*, emails: Iterable[Email], ticket: Ticket | None = None) -> list[Notification]:
    """Write e-mails to the outbox in the caller's transaction (delivery after commit, retried like every
    notification). Inactive users, users without an address and addresses that bounced for good are left out."""
    now = timezone.now()
    wanted = [email for email in emails if email.recipient.is_active and email.recipient.email]
    suppressed = set(
        SuppressedAddress.objects.filter(address__in=[e.recipient.email.lower() for e in wanted]).values_list(
            "address", flat=True
        )
    )
    rows = [
        Notification(
            channel=Channel.EMAIL,
            target=email.recipient.email,
            recipient=email.recipient,
            subject=" ".join(email.subject.split())[:300],
            body=email.body,
            html_body=email.html_body,
            headers=email.headers,
            ticket=ticket,
            status=Status.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        for email in wanted
        if email.recipient.email.lower() not in suppressed
    ]
    if not rows:
        return []
    created = Notification.objects.bulk_create(rows)
    transaction.on_commit(partial(_enqueue_after_commit, [row.pk for row in created], urgent=False))
    return created


def describe(notification: Notification) -> str:
    """Where a notification goes, in words that do not reveal a webhook URL (those are secrets)."""
    word = CHANNEL_WORDS.get(Channel(notification.channel), notification.channel)
    if notification.endpoint_id:
        return f"{word} to endpoint {notification.endpoint.name if notification.endpoint else notification.endpoint_id}"
    who = notification.recipient.get_username() if notification.recipient else "a removed user"
    return f"{word} to {who}"


def _unique_active(users: Iterable[Any]) -> list[Any]:
    seen: set[int] = set()
    people = []
    for user in users:
        if user is None or user.pk in seen or not getattr(user, "is_active", True):
            continue
        seen.add(user.pk)
        people.append(user)
    return people


def _endpoints_for(incident: Incident) -> list[WebhookEndpoint]:
    teams = Service.objects.filter(incidents=incident, team__isnull=False).values("team_id")
    return list(WebhookEndpoint.objects.filter(enabled=True).filter(Q(team__isnull=True) | Q(team__in=teams)))


def _incident_summary(incident: Incident | None) -> dict[str, Any] | None:
    if incident is None:
        return None
    return {
        "id": incident.pk,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "services": sorted(incident.services.values_list("slug", flat=True)),
    }


def _queue(urgent: bool) -> str:
    # Pages go through the critical queue, so a flood of ordinary notifications never delays them.
    return "critical" if urgent else "notifications"


def _enqueue_after_commit(notification_ids: list[int], *, urgent: bool) -> None:
    """Queue the deliveries of new rows without holding up the request on a slow broker; the first refusal stops
    the rest (the relay queues them)."""

    def send() -> None:
        for notification_id in notification_ids:
            if not _enqueue(notification_id, urgent=urgent):
                break

    publish_soon(send, f"the delivery of notifications {notification_ids}")


def _enqueue(notification_id: int, *, urgent: bool, expires: int | None = None) -> bool:
    """Queue one delivery. Never raises: a row whose message did not reach the broker is relayed later."""
    try:
        current_app.send_task(DELIVER_TASK, args=[notification_id], queue=_queue(urgent), retry=False, expires=expires)
    except Exception:
        logger.warning("could not queue notification %s; the relay will deliver it", notification_id, exc_info=True)
        return False
    return True


def notification_relay(*, now: datetime | None = None, batch_size: int = RELAY_BATCH) -> dict[str, int]:
    """Queue every pending row that is due (oldest first, a bounded batch). If the broker refuses, deliver the
    rest here, within a time budget. Safe to run twice: a row is claimed by whoever delivers it."""
    now = now or timezone.now()
    due = list(
        Notification.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", "urgent")[:batch_size]
    )
    queued = delivered = 0
    broker_down = False
    started = time.monotonic()
    for pk, urgent in due:
        if not broker_down and _enqueue(pk, urgent=urgent, expires=RELAY_MESSAGE_EXPIRES):
            queued += 1
            continue
        broker_down = True
        if time.monotonic() - started > RELAY_INLINE_BUDGET_SECONDS:
            break
        if notification_deliver(notification_id=pk) is not None:
            delivered += 1
    return {"due": len(due), "queued": queued, "delivered_here": delivered}


def notifications_delete_old(*, now: datetime | None = None) -> int:
    """Delete delivered notifications (with their attempts) older than ITSM_CLEANUP_RETENTION_DAYS; returns how
    many. Failed and pending ones stay until someone has looked at them."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ITSM_CLEANUP_RETENTION_DAYS)
    _, per_model = Notification.objects.filter(status=Status.DELIVERED, created_at__lt=cutoff).delete()
    return per_model.get("itsm.Notification", 0)


# --- redelivery --------------------------------------------------------------------------------------------------
def notification_redeliver(*, notification_id: int, actor: Any) -> Notification:
    """Send a delivered or failed notification again, with a fresh budget of attempts (the earlier attempts stay in
    the log). The target is refreshed from its endpoint or channel, so a corrected URL is used."""
    if not is_staff_role(actor):
        raise NotPermitted("Only agents and admins can redeliver notifications.")
    now = timezone.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("endpoint", "user_channel", "recipient", "incident")
            .get(pk=notification_id)
        )
        if notification.status == Status.PENDING:
            raise NotReady("This notification is still being delivered; redeliver it once it is delivered or failed.")
        notification.target = _current_target(notification)
        notification.status = Status.PENDING
        notification.attempts = 0
        notification.next_attempt_at = now
        notification.delivered_at = None
        notification.last_error = ""
        notification.save(
            update_fields=["target", "status", "attempts", "next_attempt_at", "delivered_at", "last_error"]
        )
        if notification.incident is not None:
            note = f"Redelivery of the {describe(notification)}: {notification.subject}"[:2000]
            kind, new = Event.Kind.NOTIFICATION, notification.pk
            event_record(
                incident=notification.incident, actor=actor, kind=kind, field="redelivery", new=new, note=note, at=now
            )
        transaction.on_commit(partial(_enqueue_after_commit, [notification.pk], urgent=notification.urgent))
    return notification


def _current_target(notification: Notification) -> str:
    if notification.endpoint is not None:
        return notification.endpoint.url
    if notification.user_channel is not None:
        return notification.user_channel.target
    if notification.channel == Channel.EMAIL and notification.recipient is not None and notification.recipient.email:
        return notification.recipient.email
    return notification.target
