from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.sla import sla_recompute_open_tickets, sla_scan


@shared_task(name="itsm.tasks.sla.scan_sla")
def scan_sla() -> dict[str, Any] | None:
    """Every minute: mark tickets that became at risk or breached their SLA."""
    run = job_run_scheduled(job="scan_sla", work=sla_scan)
    return run.detail if run else None


@shared_task(name="itsm.tasks.sla.recompute_sla")
def recompute_sla() -> int:
    """After a change of SLA policy, calendar or holidays: recompute the due times of every open ticket."""
    return sla_recompute_open_tickets()
