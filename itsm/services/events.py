"""The timeline and audit trail: every recorded change is one appended Event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from itsm.models import Event, Incident, Ticket


def event_record(
    *,
    ticket: Ticket | None = None,
    incident: Incident | None = None,
    window_id: int | None = None,
    actor: Any,
    kind: str,
    field: str = "",
    old: object = "",
    new: object = "",
    note: str = "",
    at: datetime | None = None,
) -> Event:
    """Append one entry to a ticket's, an incident's or a maintenance window's timeline."""
    return Event.objects.create(
        ticket=ticket,
        incident=incident,
        window_id=window_id,
        actor=actor if getattr(actor, "pk", None) else None,
        kind=kind,
        field=field,
        old_value="" if old is None else str(old),
        new_value="" if new is None else str(new),
        note=note,
        created_at=at or timezone.now(),
    )
