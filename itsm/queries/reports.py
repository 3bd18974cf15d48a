"""Incident reports computed in SQL: MTTA, MTTR and response-target compliance per severity and service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from itsm.lifecycles import INCIDENT_CLOSED_STATUSES
from itsm.models import Incident


def _responded_at() -> Any:
    return Coalesce("acknowledged_at", "diagnosing_at", "mitigating_at", "resolved_at")


def _aggregates(now: datetime) -> dict[str, Any]:
    responded = F("responded_at")
    missed = (
        Q(response_target_missed=True)
        | Q(responded_at__gt=F("response_due_at"))
        | Q(responded_at__isnull=True, response_due_at__lt=now)
    )
    return {
        "count": Count("id", distinct=True),
        "open": Count("id", distinct=True, filter=~Q(status__in=INCIDENT_CLOSED_STATUSES)),
        "mtta": Avg(ExpressionWrapper(responded - F("detected_at"), output_field=DurationField())),
        "mttr": Avg(
            ExpressionWrapper(F("resolved_at") - F("detected_at"), output_field=DurationField()),
            filter=Q(resolved_at__isnull=False),
        ),
        "measured": Count("id", distinct=True, filter=Q(responded_at__isnull=False) | Q(response_due_at__lt=now)),
        "missed": Count("id", distinct=True, filter=missed),
    }


def _row(values: dict[str, Any]) -> dict[str, Any]:
    measured = values.pop("measured")
    missed = values.pop("missed")
    for name in ("mtta", "mttr"):
        duration = values.pop(name)
        values[f"{name}_seconds"] = round(duration.total_seconds()) if duration is not None else None
    values["response_target_met"] = measured - missed
    values["response_target_missed"] = missed
    values["response_compliance"] = round((measured - missed) / measured, 4) if measured else None
    return values


def incident_report(*, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
    """Incidents detected in [start, end): totals, per severity and per service."""
    now = now or timezone.now()
    incidents: QuerySet[Incident] = Incident.objects.filter(detected_at__gte=start, detected_at__lt=end).annotate(
        responded_at=_responded_at()
    )
    aggregates = _aggregates(now)
    total = _row(incidents.aggregate(**aggregates))
    by_severity = {
        row["severity"]: _row({k: v for k, v in row.items() if k != "severity"})
        for row in incidents.order_by().values("severity").annotate(**aggregates)
    }
    by_service = [
        _row(dict(row))
        for row in incidents.filter(services__isnull=False)
        .order_by()
        .values(service_id=F("services__id"), service=F("services__slug"))
        .annotate(**aggregates)
        .order_by("service")
    ]
    return {
        "from": start,
        "to": end,
        "total": total,
        "by_severity": {severity: by_severity.get(severity) for severity in Incident.Severity.values},
        "by_service": by_service,
    }
