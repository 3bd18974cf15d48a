from datetime import timedelta
from typing import Any

from celery import shared_task

from itsm.services.cleanup import cleanup_old_records
from itsm.services.jobs import job_run_once
from itsm.services.vacuum import database_vacuum


@shared_task(name="itsm.tasks.maintenance.cleanup")
def cleanup() -> dict[str, Any] | None:
    """Daily: delete resolved alerts, delivered notifications, job runs, expired tokens and sessions past their
    retention (ITSM_RETENTION_DAYS_*), in batches."""
    run = job_run_once(job="cleanup", period=timedelta(days=1), work=cleanup_old_records)
    return run.detail if run else None


# Prefetch and time limits as for any task; VACUUM on a large database takes minutes, well below them.
@shared_task(name="itsm.tasks.maintenance.vacuum_database")
def vacuum_database() -> dict[str, Any] | None:
    """Weekly: VACUUM ANALYZE the database (SQLite: VACUUM, ANALYZE, PRAGMA optimize)."""
    run = job_run_once(job="vacuum_database", period=timedelta(days=7), work=database_vacuum)
    return run.detail if run else None
