"""Gauges read from the database and the broker, refreshed every 30 s by Beat (docs/monitoring.md).

Counters are incremented where things happen; these are states (open tickets, queue lengths, unapplied
migrations) that only a query can tell. In multiprocess mode the most recent value wins across processes.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from kombu.exceptions import ChannelError

from itsm import metrics
from itsm.models import Ticket

logger = logging.getLogger(__name__)

OPEN_STATUSES = (
    Ticket.Status.NEW,
    Ticket.Status.OPEN,
    Ticket.Status.IN_PROGRESS,
    Ticket.Status.PENDING,
)


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
    from itsm_project.celery import QUEUES, app

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
    for name, refresh in (("tickets", tickets_refresh), ("queues", queues_refresh), ("migrations", migrations_refresh)):
        try:
            detail[name] = refresh()
        except Exception as exc:  # reported in the job's detail and the log; the next run retries
            logger.warning("metrics refresh of %s failed: %s", name, exc)
            detail[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    return detail
