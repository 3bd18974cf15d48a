from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.monitoring import metrics_refresh


@shared_task(name="itsm.tasks.monitoring.refresh_metrics")
def refresh_metrics() -> dict[str, Any] | None:
    """Every 30 s: the gauges only a query can tell (open tickets, queue lengths, unapplied migrations)."""
    run = job_run_scheduled(job="refresh_metrics", work=metrics_refresh)
    return run.detail if run else None
