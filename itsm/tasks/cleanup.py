from typing import Any

from celery import shared_task

from itsm.services.cleanup import cleanup_old_records
from itsm.services.jobs import job_run_scheduled


@shared_task(name="itsm.tasks.cleanup.cleanup")
def cleanup() -> dict[str, Any] | None:
    """Daily: delete resolved alerts, delivered notifications, job runs, expired tokens and sessions past their
    retention (ITSM_RETENTION_DAYS_*), and the audit trail's rows past ITSM_AUDIT_RETENTION_DAYS, in batches."""
    run = job_run_scheduled(job="cleanup", work=cleanup_old_records)
    return run.detail if run else None
