from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.vacuum import database_vacuum


# Prefetch and time limits as for any task; VACUUM on a large database takes minutes, well below them.
@shared_task(name="itsm.tasks.vacuum.vacuum_database")
def vacuum_database() -> dict[str, Any] | None:
    """Weekly: VACUUM ANALYZE the database (SQLite: VACUUM, ANALYZE, PRAGMA optimize)."""
    run = job_run_scheduled(job="vacuum_database", work=database_vacuum)
    return run.detail if run else None
