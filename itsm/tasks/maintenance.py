from datetime import timedelta
from typing import Any

from celery import shared_task

from itsm.services.cleanup import cleanup_sessions_and_tokens as cleanup
from itsm.services.jobs import job_run_once


@shared_task(name="itsm.tasks.maintenance.cleanup_sessions_and_tokens")
def cleanup_sessions_and_tokens() -> dict[str, Any] | None:
    """Daily: delete expired sessions and API tokens, and old job records."""
    run = job_run_once(job="cleanup_sessions_and_tokens", period=timedelta(days=1), work=cleanup)
    return run.detail if run else None
