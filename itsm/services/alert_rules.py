"""Alert evaluation by Celery: admin-defined rules (built-in checks or PromQL) → pending → firing → resolved.

Firing and resolved alerts take the Alertmanager intake's path into incidents, so grouping, maintenance
windows and paging behave the same. Each rule is evaluated under a row lock taken with SKIP LOCKED, so two
evaluators running at once never evaluate (or fire) the same rule twice.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from itsm import metrics
from itsm.lifecycles import TICKET_DONE_STATUSES
from itsm.models import Alert, AlertRule, Backup, Incident, JobRun, Ticket
from itsm.services.alerts import alerts_ingest
from itsm.services.health import check_broker, check_cache
from itsm.services.monitoring import MonitoringUnavailable, prometheus_query

logger = logging.getLogger(__name__)

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}
UNREACHABLE_FINGERPRINT = "itsm-rule-prometheus-unreachable"


def _up(check: Callable[[], None]) -> float:
    try:
        check()
    except Exception:  # a failing dependency is the value 0, not an error of the evaluator
        return 0.0
    return 1.0


def _backup_age(now: datetime) -> float:
    newest = (
        Backup.objects.filter(kind=Backup.Kind.DATABASE, status=Backup.Status.SUCCEEDED, verified_ok=True)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return math.inf if newest is None else (now - newest).total_seconds()


def _missed_jobs(now: datetime) -> float:
    """Jobs whose latest run is more than two of their periods old (the period is the gap between their last
    two runs; a job seen once is not judged yet)."""
    missed = 0
    for job in JobRun.objects.order_by().values_list("job", flat=True).distinct():
        slots = list(JobRun.objects.filter(job=job).order_by("-slot").values_list("slot", flat=True)[:2])
        if len(slots) == 2 and now - slots[0] > 2 * (slots[0] - slots[1]) + timedelta(seconds=30):
            missed += 1
    return float(missed)


def promql_value(expression: str) -> float | None:
    """The value of the first sample of an instant query; None when the result is empty."""
    values = prometheus_query(expression)
    return values[0] if values else None


def rule_value(rule: AlertRule, now: datetime) -> float | None:
    probe = AlertRule.Probe
    built_in: dict[str, Callable[[], float]] = {
        probe.CACHE_UP: lambda: _up(check_cache),
        probe.BROKER_UP: lambda: _up(check_broker),
        probe.BACKUP_AGE: lambda: _backup_age(now),
        probe.MISSED_JOBS: lambda: _missed_jobs(now),
        probe.SLA_BREACHES: lambda: float(
            Ticket.objects.filter(sla_status=Ticket.SlaStatus.BREACHED).exclude(status__in=TICKET_DONE_STATUSES).count()
        ),
    }
    if rule.probe == probe.PROMQL:
        return promql_value(rule.expression)
    return built_in[rule.probe]()


def _alert(rule: AlertRule, status: str, now: datetime, value: float | None) -> dict[str, Any]:
    labels = {"alertname": rule.name, "severity": rule.severity, "itsm_rule": str(rule.pk)}
    if rule.service is not None:
        labels["service"] = rule.service.slug
    shown = "no data" if value is None else f"{value:g}"
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": rule.summary or f"{rule.name}",
            "description": f"{rule.get_probe_display()} {rule.get_comparison_display()} {rule.threshold:g} "
            f"(value {shown}, for {rule.for_seconds} s).",
        },
        "startsAt": rule.firing_since or now,
        "endsAt": now if status == "resolved" else None,
        "generatorURL": "",
        "fingerprint": f"itsm-rule-{rule.pk}",
    }


def _send(alerts: list[dict[str, Any]], group_key: str, now: datetime) -> None:
    alerts_ingest(
        payload={"version": "4", "groupKey": group_key, "alerts": alerts}, now=now, source=Incident.Source.RULE
    )


def alert_rules_evaluate(*, now: datetime | None = None) -> dict[str, int]:
    """Evaluate every enabled rule once; return how many fired, resolved and failed to evaluate."""
    now = now or timezone.now()
    counts = {"evaluated": 0, "fired": 0, "resolved": 0, "errors": 0}
    prometheus_error: str | None = None
    for rule_id in AlertRule.objects.filter(enabled=True).values_list("id", flat=True):
        with transaction.atomic():
            rule = AlertRule.objects.select_for_update(skip_locked=True).filter(pk=rule_id).first()
            if rule is None:
                continue  # another evaluator holds it right now
            try:
                value = rule_value(rule, now)
            except MonitoringUnavailable as exc:
                prometheus_error = str(exc)
                rule.last_error = prometheus_error[:2000]
                rule.last_evaluated_at = now
                rule.save(update_fields=["last_error", "last_evaluated_at"])
                counts["errors"] += 1
                metrics.ALERT_RULE_ERRORS.labels(rule=rule.name).inc()
                continue
            counts["evaluated"] += 1
            outcome = _step(rule, value, now)
            if outcome:
                counts[outcome] += 1
    _prometheus_reachability(prometheus_error, now)
    return counts


def _step(rule: AlertRule, value: float | None, now: datetime) -> str | None:
    """Advance one rule's state machine; send the alert on firing and on resolving."""
    holds = value is not None and COMPARE[rule.comparison](value, rule.threshold)
    rule.last_value = None if value is None or math.isinf(value) else value
    rule.last_evaluated_at, rule.last_error = now, ""
    outcome = None
    state = AlertRule.State
    if holds and rule.state == state.INACTIVE:
        rule.state, rule.pending_since = state.PENDING, now
    if (
        holds
        and rule.state == state.PENDING
        and now - (rule.pending_since or now) >= timedelta(seconds=rule.for_seconds)
    ):
        rule.state, rule.firing_since = state.FIRING, now
        _send([_alert(rule, "firing", now, value)], f"rule:{rule.name}", now)
        outcome = "fired"
    elif not holds and rule.state == state.FIRING:
        _send([_alert(rule, "resolved", now, value)], f"rule:{rule.name}", now)
        rule.state, rule.pending_since, rule.firing_since = state.INACTIVE, None, None
        outcome = "resolved"
    elif not holds:
        rule.state, rule.pending_since = state.INACTIVE, None
    rule.save()
    return outcome


def _prometheus_reachability(error: str | None, now: datetime) -> None:
    """An unreachable Prometheus is a visible condition: an alert of its own, resolved when it answers again."""
    metrics.PROMETHEUS_REACHABLE.set(0 if error else 1)
    current = Alert.objects.filter(fingerprint=UNREACHABLE_FINGERPRINT).values_list("status", flat=True).first()
    if error is None and current != Alert.Status.FIRING:
        return
    if error is not None and current == Alert.Status.FIRING:
        return
    alert = {
        "status": "firing" if error else "resolved",
        "labels": {"alertname": "PrometheusUnreachable", "severity": "warning", "itsm_severity": "medium"},
        "annotations": {
            "summary": "Prometheus cannot be queried by the alert rules",
            "description": error or "Reachable again.",
        },
        "startsAt": now,
        "endsAt": None if error else now,
        "generatorURL": "",
        "fingerprint": UNREACHABLE_FINGERPRINT,
    }
    _send([alert], "rule:PrometheusUnreachable", now)
