"""The public view of the platform: what anyone may see of services, incidents and maintenance windows, without
signing in (the status page) and what requesters are shown of incidents and windows everywhere (the API's requester
serializers show the same PUBLIC_FIELDS of the same rows). Only incidents and windows that staff marked public, under
their public titles, with severities, states, times and each incident's latest public status update (posted by an
agent with `public: true`): no internal titles, summaries, internal notes, alerts, people or addresses. A service's
state is read from the public ones alone, so the page says nothing that staff have not published."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from itsm.lifecycles import INCIDENT_CLOSED_STATUSES, MAINTENANCE_UNDER_WAY_STATUSES
from itsm.models import Event, Incident, MaintenanceWindow, Service

STATE_LABELS = {
    "operational": "Operational",
    "degraded": "Degraded performance",
    "outage": "Outage",
    "maintenance": "Under maintenance",
}
# How far ahead the page lists upcoming windows.
UPCOMING_DAYS = 14


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def public_incidents() -> QuerySet[Incident]:
    """The incidents that anyone may see (their PUBLIC_FIELDS only)."""
    return Incident.objects.filter(public=True)


def public_windows() -> QuerySet[MaintenanceWindow]:
    """The maintenance windows that anyone may see (their PUBLIC_FIELDS only)."""
    return MaintenanceWindow.objects.filter(public=True)


def status_summary(*, now: datetime | None = None) -> dict[str, Any]:
    """What a visitor may see, as plain data (the HTML page and the JSON both render this)."""
    now = now or timezone.now()
    latest_update = Event.objects.filter(incident=OuterRef("pk"), kind=Event.Kind.STATUS_UPDATE).order_by(
        "-created_at", "-id"
    )
    incidents = list(
        public_incidents()
        .exclude(status__in=INCIDENT_CLOSED_STATUSES)
        .annotate(
            update_body=Subquery(latest_update.values("note")[:1]),
            update_at=Subquery(latest_update.values("created_at")[:1]),
        )
        .prefetch_related("services")
        .order_by("-detected_at")[:50]
    )
    windows = list(
        public_windows()
        .filter(
            status__in=[MaintenanceWindow.Status.SCHEDULED, *MAINTENANCE_UNDER_WAY_STATUSES],
            starts_at__lt=now + timedelta(days=UPCOMING_DAYS),
        )
        .exclude(status=MaintenanceWindow.Status.SCHEDULED, ends_at__lte=now)
        .prefetch_related("services")
        .order_by("starts_at")[:50]
    )
    maintained = {s.pk for w in windows if w.status in MAINTENANCE_UNDER_WAY_STATUSES for s in w.services.all()}
    outage = {s.pk for i in incidents if i.severity == Incident.Severity.CRITICAL for s in i.services.all()}
    degraded = {s.pk for i in incidents for s in i.services.all()}
    services = []
    for service in Service.objects.order_by("name"):
        if service.pk in maintained:
            state = "maintenance"
        elif service.pk in outage:
            state = "outage"
        elif service.pk in degraded:
            state = "degraded"
        else:
            state = "operational"
        services.append({"name": service.name, "slug": service.slug, "state": state, "label": STATE_LABELS[state]})
    return {
        "generated_at": now.isoformat(),
        "services": services,
        "incidents": [
            {
                "title": incident.public_title,
                "severity": incident.severity,
                "status": incident.status,
                "services": [s.name for s in incident.services.all()],
                "detected_at": _iso(incident.detected_at),
                "updated_at": _iso(incident.updated_at),
                "latest_update": (
                    {"body": incident.update_body, "at": _iso(incident.update_at)}
                    if incident.update_at is not None
                    else None
                ),
            }
            for incident in incidents
        ],
        "maintenance": [
            {
                "title": window.public_title,
                "status": window.status,
                "services": [s.name for s in window.services.all()],
                "starts_at": _iso(window.starts_at),
                "ends_at": _iso(window.ends_at),
            }
            for window in windows
        ],
    }
