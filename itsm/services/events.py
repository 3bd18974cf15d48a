from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from itsm.models import Event, Incident, Ticket


def event_record(
    *,
    ticket: Ticket | None = None,
    incident: Incident | None = None,
    actor: Any,
    kind: str,
    field: str = "",
    old: object = "",
    new: object = "",
    note: str = "",
    at: datetime | None = None,
) -> Event:
    """Append one entry to a ticket's or an incident's timeline."""
    return Event.objects.create(
        ticket=ticket,
        incident=incident,
        actor=actor if getattr(actor, "pk", None) else None,
        kind=kind,
        field=field,
        old_value="" if old is None else str(old),
        new_value="" if new is None else str(new),
        note=note,
        created_at=at or timezone.now(),
    )
