"""The clocks that maintenance stops: when each service was (or is planned to stay) in maintenance, and the
incident response and escalation times with those pauses cut out.

Tickets (`services.sla`), incidents, paging and the alert intake read these; maintenance windows write the rows
they are computed from. Nothing here writes, so every service above may use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from itsm import sla
from itsm.lifecycles import MAINTENANCE_UNDER_WAY_STATUSES
from itsm.models import Incident, Service
from itsm.queries.maintenance import started_windows_of

Pause = tuple[datetime, datetime]

# The manual's "Response Time" per severity: the incident must be acknowledged within this.
RESPONSE_TARGETS = {
    Incident.Severity.CRITICAL: timedelta(minutes=15),
    Incident.Severity.HIGH: timedelta(hours=1),
    Incident.Severity.MEDIUM: timedelta(hours=4),
    Incident.Severity.LOW: timedelta(days=1),
}


def services_under_maintenance() -> set[int]:
    """The ids of the services whose maintenance window is under way (started, checks not yet passed)."""
    return set(
        Service.objects.filter(maintenance_windows__status__in=MAINTENANCE_UNDER_WAY_STATUSES).values_list(
            "pk", flat=True
        )
    )


def maintenance_pauses(*, service_id: int) -> list[Pause]:
    """When the service was (or is planned to stay) in maintenance: from each window's start to its end (the move
    to verifying, or the planned end while it runs). Ticket SLA clocks of the service stop in these."""
    return maintenance_pauses_for(service_ids=[service_id])


def maintenance_pauses_for(*, service_ids: Iterable[int]) -> list[Pause]:
    """The maintenance of any of these services (an incident's), as in `maintenance_pauses`; they may overlap."""
    pauses = []
    for started, verifying, aborted, planned in started_windows_of(list(service_ids)):
        end = verifying or aborted or planned  # an aborted window (cancelled while it ran) ended when cancelled
        if started is not None and end > started:
            pauses.append((started, end))
    return pauses


def clock_due(start: datetime, target: timedelta, pauses: list[Pause]) -> datetime:
    """When `target` of clock time has run from `start`, with the pauses (maintenance) cut out."""
    due = sla.due_at(sla.ALWAYS, sla.without([(start, None)], pauses), target.total_seconds() / 60)
    return due if due is not None else start + target


def incident_pauses(incident: Incident) -> list[Pause]:
    return maintenance_pauses_for(service_ids=incident.services.values_list("pk", flat=True))


def incident_response_due(incident: Incident, pauses: list[Pause] | None = None) -> datetime:
    """Acknowledge by: the severity's target from detection, paused while any of its services is in maintenance
    (DESIGN.md), so time inside a window never counts against the response target."""
    if pauses is None:
        pauses = incident_pauses(incident)
    return clock_due(incident.detected_at, RESPONSE_TARGETS[Incident.Severity(incident.severity)], pauses)


def incident_escalation_due(incident: Incident, since: datetime, pauses: list[Pause] | None = None) -> datetime:
    """The next escalation step, one response target after `since` (the last step) with maintenance cut out."""
    if pauses is None:
        pauses = incident_pauses(incident)
    return clock_due(since, RESPONSE_TARGETS[Incident.Severity(incident.severity)], pauses)
