from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.maintenance_lifecycle import maintenance_tick


@shared_task(name="itsm.tasks.maintenance.run_maintenance_windows")
def run_maintenance_windows() -> dict[str, Any] | None:
    """Every minute: announce, back up and start, end and verify the maintenance windows (once per slot)."""
    run = job_run_scheduled(job="maintenance_windows", work=maintenance_tick)
    return run.detail if run else None
