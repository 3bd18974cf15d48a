from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.paging import incident_escalation_scan


@shared_task(name="itsm.tasks.paging.escalate_incidents")
def escalate_incidents() -> dict[str, Any] | None:
    """Every 30 s: page the next person for incidents still unacknowledged at their escalation time."""
    run = job_run_scheduled(job="escalate_incidents", work=incident_escalation_scan)
    return run.detail if run else None
