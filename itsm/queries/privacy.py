"""What the platform holds about one person, as one JSON document: the answer to an access request
(docs/runbooks/personal-data-request.md). Erasure is itsm.services.privacy.

The document lists records, not file contents: an attachment is its name, size and ticket, never its bytes; an
inbound message is its sender, subject and outcome, not its raw text (the ticket or comment it became is listed).
"""

from __future__ import annotations

from typing import Any

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from itsm.models import (
    Attachment,
    Comment,
    Event,
    InboundMessage,
    Incident,
    IntegrationToken,
    MaintenanceWindow,
    Notification,
    NotificationChannel,
    Override,
    Postmortem,
    RotationMember,
    SuppressedAddress,
    Ticket,
    TicketRating,
)
from itsm.roles import role_of

FORMAT = "itsm-personal-data/1"


class PersonNotFound(Exception):
    """No account has this user name or e-mail address (or several share the address)."""


def person_find(identifier: str) -> Any:
    """The account a user name or an e-mail address names: the user name first (any case), then the address. Raises
    PersonNotFound with a message for a person, when none or several accounts match."""
    users = get_user_model()._default_manager
    value = identifier.strip()
    if not value:
        raise PersonNotFound("Give a user name or an e-mail address.")
    found = users.filter(username__iexact=value).first()
    if found is not None:
        return found
    by_address = list(users.filter(email__iexact=value).order_by("pk")[:2]) if "@" in value else []
    if len(by_address) > 1:
        raise PersonNotFound(f"Several accounts have the address {value!r}: give the user name instead.")
    if not by_address:
        raise PersonNotFound(f"No account has the user name or e-mail address {value!r}.")
    return by_address[0]


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _ticket(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.pk,
        "title": ticket.title,
        "description": ticket.description,
        "status": ticket.status,
        "priority": ticket.priority,
        "created_at": _when(ticket.created_at),
        "updated_at": _when(ticket.updated_at),
    }


def _account(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "role": str(role_of(user)),
        "active": user.is_active,
        "teams": sorted(team.name for team in user.teams.all()),
        "date_joined": _when(user.date_joined),
        "last_login": _when(user.last_login),
    }


def _sign_in(user: Any) -> dict[str, Any]:
    issued = IntegrationToken.objects.filter(Q(created_by=user) | Q(revoked_by=user) | Q(account=user))
    return {
        "password_set": user.has_usable_password(),
        "two_factor_enrolled": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "recovery_codes_left": StaticToken.objects.filter(device__user=user, device__confirmed=True).count(),
        "api_tokens": AuthToken.objects.filter(user=user).count(),
        "integration_tokens": [
            {
                "name": token.name,
                "scope": token.scope,
                "is_this_account": token.account_id == user.pk,
                "issued_by_them": token.created_by_id == user.pk,
                "revoked_by_them": token.revoked_by_id == user.pk,
                "created_at": _when(token.created_at),
                "expires_at": _when(token.expires_at),
                "revoked_at": _when(token.revoked_at),
            }
            for token in issued.order_by("name")
        ],
    }


def _tickets(user: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "requested": [_ticket(t) for t in Ticket.objects.filter(requester=user).order_by("pk")],
        "assigned": [_ticket(t) for t in Ticket.objects.filter(assignee=user).order_by("pk")],
        "watched": [_ticket(t) for t in user.watched_tickets.order_by("pk")],
    }


def _comments(user: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": c.pk,
            "ticket": c.ticket_id,
            "body": c.body,
            "internal": c.internal,
            "created_at": _when(c.created_at),
        }
        for c in Comment.objects.filter(author=user).order_by("pk")
    ]


def _attachments(user: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": a.pk,
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "ticket": a.ticket_id,
            "comment": a.comment_id,
            "created_at": _when(a.created_at),
        }
        for a in Attachment.objects.filter(uploaded_by=user).order_by("pk")
    ]


def _incidents(user: Any) -> dict[str, list[dict[str, Any]]]:
    acted = Event.objects.filter(actor=user, incident__isnull=False).values("incident")
    incidents = Incident.objects.filter(Q(commander=user) | Q(created_by=user) | Q(pk__in=acted)).order_by("pk")
    return {
        "incidents": [
            {
                "id": i.pk,
                "title": i.title,
                "status": i.status,
                "severity": i.severity,
                "commander": i.commander_id == user.pk,
                "created_by_them": i.created_by_id == user.pk,
                "detected_at": _when(i.detected_at),
            }
            for i in incidents
        ],
        "postmortems_written": [
            {"incident": p.incident_id, "status": p.status, "updated_at": _when(p.updated_at)}
            for p in Postmortem.objects.filter(author=user).order_by("pk")
        ],
        "maintenance_windows": [
            {"id": w.pk, "title": w.title, "status": w.status, "starts_at": _when(w.starts_at)}
            for w in MaintenanceWindow.objects.filter(Q(owner=user) | Q(created_by=user)).order_by("pk")
        ],
        "timeline_entries": [
            {
                "id": e.pk,
                "ticket": e.ticket_id,
                "incident": e.incident_id,
                "window": e.window_id,
                "kind": e.kind,
                "field": e.field,
                "created_at": _when(e.created_at),
            }
            for e in Event.objects.filter(actor=user).order_by("pk")
        ],
    }


def _notifications(user: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "notifications": [
            {
                "id": n.pk,
                "channel": n.channel,
                "target": n.target,
                "subject": n.subject,
                "status": n.status,
                "ticket": n.ticket_id,
                "incident": n.incident_id,
                "created_at": _when(n.created_at),
                "delivered_at": _when(n.delivered_at),
            }
            for n in Notification.objects.filter(Q(recipient=user) | Q(target__iexact=user.email or "-")).order_by("pk")
        ],
        "notification_channels": [
            {"channel": c.channel, "target": c.target, "enabled": c.enabled, "created_at": _when(c.created_at)}
            for c in NotificationChannel.objects.filter(user=user).order_by("pk")
        ],
        "suppressed_addresses": [
            {"address": s.address, "reason": s.reason, "bounces": s.bounces, "created_at": _when(s.created_at)}
            for s in SuppressedAddress.objects.filter(address__iexact=user.email or "-")
        ],
    }


def _mail(user: Any) -> list[dict[str, Any]]:
    messages = InboundMessage.objects.filter(sender__iexact=user.email) if user.email else InboundMessage.objects.none()
    return [
        {
            "id": m.pk,
            "sender": m.sender,
            "subject": m.subject,
            "status": m.status,
            "ticket": m.ticket_id,
            "comment": m.comment_id,
            "size": m.size,
            "received_at": _when(m.received_at),
        }
        for m in messages.order_by("pk")
    ]


def _oncall(user: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "rotations": [
            {"rotation": m.rotation.name, "position": m.position}
            for m in RotationMember.objects.filter(user=user).select_related("rotation").order_by("pk")
        ],
        "overrides": [
            {"rotation": o.rotation.name, "starts_at": _when(o.starts_at), "ends_at": _when(o.ends_at), "note": o.note}
            for o in Override.objects.filter(user=user).select_related("rotation").order_by("pk")
        ],
    }


def _audit_entry(entry: LogEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "timestamp": _when(entry.timestamp),
        "action": entry.get_action_display(),
        "object_type": entry.content_type.model if entry.content_type_id else None,
        "object_id": entry.object_pk,
        "object": entry.object_repr,
        "changes": entry.changes,
        "source": (entry.additional_data or {}).get("source"),
        "remote_addr": entry.remote_addr,
    }


def _audit(user: Any) -> dict[str, list[dict[str, Any]]]:
    user_type = ContentType.objects.get_for_model(user, for_concrete_model=False)
    entries = LogEntry.objects.select_related("content_type").order_by("timestamp", "pk")
    return {
        "by_them": [_audit_entry(e) for e in entries.filter(actor=user)],
        "about_their_account": [_audit_entry(e) for e in entries.filter(content_type=user_type, object_id=user.pk)],
    }


def personal_data_export(user: Any) -> dict[str, Any]:
    """Everything the platform holds about `user`, JSON-ready (dates as ISO 8601 strings)."""
    return {
        "format": FORMAT,
        "generated_at": _when(timezone.now()),
        "account": _account(user),
        "sign_in": _sign_in(user),
        "tickets": _tickets(user),
        "comments": _comments(user),
        "attachments": _attachments(user),
        "ratings": [
            {"ticket": r.ticket_id, "score": r.score, "comment": r.comment, "created_at": _when(r.created_at)}
            for r in TicketRating.objects.filter(rated_by=user).order_by("pk")
        ],
        **_incidents(user),
        **_notifications(user),
        "inbound_mail": _mail(user),
        "oncall": _oncall(user),
        "audit": _audit(user),
    }
