"""A maintenance window's history."""

from __future__ import annotations

from django.db.models import QuerySet

from itsm.models import Event, MaintenanceWindow


def window_events(window: MaintenanceWindow) -> QuerySet[Event]:
    """Every change of the window, oldest first: its creation, edits and each status change with its actor (for
    agents and admins: requesters see windows as the status page shows them)."""
    return Event.objects.filter(window=window).select_related("actor").order_by("created_at", "id")
