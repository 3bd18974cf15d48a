from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.ticket_notifications import ticket_notices_expand


@shared_task(name="itsm.tasks.ticket_notifications.expand_ticket_notices")
def expand_ticket_notices() -> dict[str, int]:
    """Queued after each ticket change: write the e-mails of the pending ticket notices now."""
    return ticket_notices_expand()


@shared_task(name="itsm.tasks.ticket_notifications.catch_up_ticket_notices")
def catch_up_ticket_notices() -> dict[str, Any] | None:
    """Every minute: the notices whose message was lost (a broker outage) are expanded here."""
    run = job_run_scheduled(job="ticket_notices", work=ticket_notices_expand)
    return run.detail if run else None
