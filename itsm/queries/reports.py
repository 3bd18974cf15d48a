"""Reports computed in SQL: for incidents MTTA, MTTR and response-target compliance per severity and service; for
tickets SLA compliance, median times and satisfaction per service, priority and SLA policy."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from django.db.models import Aggregate, Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from itsm.lifecycles import INCIDENT_CLOSED_STATUSES
from itsm.models import Incident, Ticket


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


# --- The ticket report ------------------------------------------------------------------------------------------


class Median(Aggregate):
    """The median of a duration: PostgreSQL's percentile_cont; on SQLite (the embedded mode) a Python aggregate
    registered on the connection, over the microseconds Django's SQLite backend gives for a duration."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        connection.ensure_connection()
        connection.connection.create_aggregate("ITSM_MEDIAN", 1, _SqliteMedian)
        plain = self.copy()  # the template, not a keyword: Aggregate.as_sql wraps it in FILTER (WHERE ...)
        plain.function, plain.template = "ITSM_MEDIAN", "%(function)s(%(expressions)s)"
        return plain.as_sql(compiler, connection, **extra_context)


class _SqliteMedian:
    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return statistics.median(self.values) if self.values else None


def _duration(end: str, start: str = "created_at") -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


def _ticket_aggregates(now: datetime) -> dict[str, Any]:
    """Per target, from the stored times: met when the clock stopped in time (the first public agent reply or the
    resolution; a due time left null means it stopped short of the target), breached when it stopped late or is
    still running past its due time; neither while it runs in time or is paused short of it."""
    # LEAST skips NULLs on PostgreSQL but not on SQLite: COALESCE covers a ticket with one of the two.
    stopped = Coalesce(Least("first_response_at", "resolved_at"), "first_response_at", "resolved_at")
    response_stopped = Q(first_response_at__isnull=False) | Q(resolved_at__isnull=False)
    resolved = Q(resolved_at__isnull=False)
    return {
        "created": Count("id"),
        "resolved": Count("id", filter=resolved),
        "first_response_met": Count(
            "id",
            filter=response_stopped & (Q(response_due_at__isnull=True) | Q(response_due_at__gte=stopped)),
        ),
        "first_response_breached": Count(
            "id",
            filter=(response_stopped & Q(response_due_at__lt=stopped))
            | (~response_stopped & Q(response_due_at__lt=now)),
        ),
        "resolution_met": Count(
            "id", filter=resolved & (Q(resolution_due_at__isnull=True) | Q(resolution_due_at__gte=F("resolved_at")))
        ),
        "resolution_breached": Count(
            "id",
            filter=(resolved & Q(resolution_due_at__lt=F("resolved_at")))
            | (Q(resolved_at__isnull=True) & Q(resolution_due_at__lt=now)),
        ),
        "median_first_response": Median(_duration("first_response_at"), filter=Q(first_response_at__isnull=False)),
        "median_resolution": Median(_duration("resolved_at"), filter=resolved),
        "ratings": Count("rating"),
        "average_score": Avg("rating__score"),
    }


def _ticket_row(values: dict[str, Any]) -> dict[str, Any]:
    row = {"created": values["created"], "resolved": values["resolved"]}
    for target in ("first_response", "resolution"):
        met, breached, median = values[f"{target}_met"], values[f"{target}_breached"], values[f"median_{target}"]
        row[f"{target}_met"], row[f"{target}_breached"] = met, breached
        row[f"{target}_compliance"] = round(met / (met + breached), 4) if met + breached else None
        row[f"median_{target}_seconds"] = round(median.total_seconds()) if median is not None else None
    average = values["average_score"]
    row["ratings"], row["average_score"] = values["ratings"], round(float(average), 2) if average is not None else None
    return row


def ticket_report(*, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
    """Tickets created in [start, end): created, resolved, first-response and resolution compliance, median times
    to first response and to resolution, satisfaction; in total, per service, per priority and per SLA policy.
    Four queries, each one aggregate in SQL."""
    now = now or timezone.now()
    tickets: QuerySet[Ticket] = Ticket.objects.filter(created_at__gte=start, created_at__lt=end).order_by()
    aggregates = _ticket_aggregates(now)
    by_priority = {
        row["priority"]: _ticket_row({k: v for k, v in row.items() if k != "priority"})
        for row in tickets.values("priority").annotate(**aggregates)
    }
    return {
        "from": start,
        "to": end,
        "total": _ticket_row(tickets.aggregate(**aggregates)),
        "by_service": [
            {"service_id": row.pop("service_id"), "service": row.pop("slug"), **_ticket_row(row)}
            for row in map(
                dict,
                tickets.values("service_id", slug=F("service__slug"))
                .annotate(**aggregates)
                .order_by(F("slug").asc(nulls_last=True)),
            )
        ],
        "by_priority": {priority: by_priority.get(priority) for priority in Ticket.Priority.values},
        "by_sla_policy": [
            {"sla_policy_id": row.pop("sla_policy_id"), "sla_policy": row.pop("name"), **_ticket_row(row)}
            for row in map(
                dict,
                tickets.values("sla_policy_id", name=F("sla_policy__name"))
                .annotate(**aggregates)
                .order_by(F("name").asc(nulls_last=True)),
            )
        ],
    }
