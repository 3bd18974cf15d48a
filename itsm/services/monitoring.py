"""The platform's side of the monitoring stack: the gauges it publishes, and what it asks Prometheus and
Alertmanager over HTTP (instant queries, firing alerts, silences). The one HTTP client of both lives here.

The gauges are read from the database and the broker, refreshed every 30 s by Beat (docs/monitoring.md).
Counters are incremented where things happen; these are states (open tickets, queue lengths, unapplied
migrations) that only a query can tell. In multiprocess mode the most recent value wins across processes.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from kombu.exceptions import ChannelError

from itsm import metrics
from itsm.lifecycles import TICKET_OPEN_STATUSES
from itsm.models import Ticket
from itsm.services.pitr import pitr_drills_reap, wal_archive_refresh
from itsm_project.celery import QUEUES, app

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 5
OPEN_STATUSES = sorted(TICKET_OPEN_STATUSES)


class MonitoringUnavailable(Exception):
    """Prometheus or Alertmanager is not configured, unreachable, or answered with an error."""


# --- Prometheus and Alertmanager over HTTP --------------------------------------------------------------------------
def _http_json(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    # The base URL is the operator's setting (ALERTMANAGER_URL, PROMETHEUS_URL), not user input.
    request = urllib.request.Request(  # noqa: S310
        f"{base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw else None


def prometheus_query(expression: str) -> list[float]:
    """The sample values of an instant query, in Prometheus' order (a scalar is one value; empty when nothing
    matched). Raises MonitoringUnavailable when Prometheus cannot answer it."""
    if not settings.PROMETHEUS_URL:
        raise MonitoringUnavailable("PROMETHEUS_URL is not set")
    path = f"/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    try:
        answer = _http_json(settings.PROMETHEUS_URL, "GET", path)
    except urllib.error.HTTPError as exc:
        raise MonitoringUnavailable(f"Prometheus answered {exc.code}: {exc.read()[:300]!r}") from None
    except (OSError, ValueError) as exc:
        raise MonitoringUnavailable(f"Prometheus at {settings.PROMETHEUS_URL} is unreachable: {exc}") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise MonitoringUnavailable(f"Prometheus refused the query: {error}")
    try:
        data = answer["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(sample["value"][1]) for sample in data["result"]]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise MonitoringUnavailable(f"Prometheus answered something else than a query result: {exc!r}") from None


def alertmanager_request(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One call of Alertmanager's API v2; its errors (urllib's HTTPError, OSError, ValueError) reach the caller,
    which decides what an unreachable Alertmanager means for its step."""
    return _http_json(settings.ALERTMANAGER_URL, method, path, body)


# --- gauges --------------------------------------------------------------------------------------------------------


def tickets_refresh() -> dict[str, int]:
    counts = {
        (row["priority"], row["status"]): row["n"]
        for row in Ticket.objects.filter(status__in=OPEN_STATUSES).values("priority", "status").annotate(n=Count("pk"))
    }
    for priority in Ticket.Priority.values:
        for status in OPEN_STATUSES:
            metrics.TICKETS_OPEN.labels(priority=priority, status=status).set(counts.get((priority, status), 0))
    breached = dict(
        Ticket.objects.filter(status__in=OPEN_STATUSES, sla_status=Ticket.SlaStatus.BREACHED)
        .values_list("priority")
        .annotate(n=Count("pk"))
    )
    for priority in Ticket.Priority.values:
        metrics.TICKETS_SLA_BREACHED_OPEN.labels(priority=priority).set(breached.get(priority, 0))
    return {"open": sum(counts.values()), "sla_breached": sum(breached.values())}


def queues_refresh() -> dict[str, int]:
    """Messages waiting per queue, through the broker's own transport (Redis or the embedded filesystem one)."""
    lengths = {}
    with app.connection_for_read() as conn:
        channel: Any = conn.default_channel
        for name in QUEUES:
            try:
                lengths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except ChannelError:
                # Redis has no key for an empty list: a queue that does not exist holds nothing.
                lengths[name] = 0
            metrics.CELERY_QUEUE_LENGTH.labels(queue=name).set(lengths[name])
    return lengths


def migrations_refresh() -> int:
    executor = MigrationExecutor(connection)
    unapplied = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    metrics.MIGRATIONS_UNAPPLIED.set(unapplied)
    return unapplied


def metrics_refresh() -> dict[str, Any]:
    """Each part on its own: a broker that is down must not stop the ticket gauges."""
    detail: dict[str, Any] = {}
    parts = (
        ("tickets", tickets_refresh),
        ("queues", queues_refresh),
        ("migrations", migrations_refresh),
        ("wal_archive_age_seconds", wal_archive_refresh),
        ("pitr_drills_interrupted", pitr_drills_reap),
    )
    for name, refresh in parts:
        try:
            detail[name] = refresh()
        except Exception as exc:  # reported in the job's detail and the log; the next run retries
            logger.warning("metrics refresh of %s failed: %s", name, exc)
            detail[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    return detail
