from datetime import timedelta
from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_once
from itsm.services.maintenance import maintenance_tick


@shared_task(name="itsm.tasks.maintenance_windows.run_maintenance_windows")
def run_maintenance_windows() -> dict[str, Any] | None:
    """Every minute: announce, back up and start, end and verify the maintenance windows (once per slot)."""
    run = job_run_once(job="maintenance_windows", period=timedelta(minutes=1), work=maintenance_tick)
    return run.detail if run else None
