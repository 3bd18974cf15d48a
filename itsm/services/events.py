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


def event_record_change(
    *,
    ticket: Ticket | None = None,
    incident: Incident | None = None,
    window_id: int | None = None,
    actor: Any,
    field: str,
    old: Any,
    new: Any,
    at: datetime,
) -> bool:
    """A `changed` entry for one edited field, written only when the value did change: a related object by its id, a
    relation (given as a set) by its sorted ids. Returns whether it changed."""
    old, new = _comparable(old), _comparable(new)
    if old == new:
        return False
    kind = Event.Kind.CHANGED
    event_record(
        ticket=ticket,
        incident=incident,
        window_id=window_id,
        actor=actor,
        kind=kind,
        field=field,
        old=old,
        new=new,
        at=at,
    )
    return True


def _comparable(value: Any) -> Any:
    """A related object as its id; a set of related objects or ids (a many-to-many relation) as its sorted ids."""
    if isinstance(value, set | frozenset):
        return ",".join(map(str, sorted(item.pk if hasattr(item, "pk") else int(item) for item in value)))
    return getattr(value, "pk", value)
