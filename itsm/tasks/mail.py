from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.mail_polling import mailboxes_poll


@shared_task(name="itsm.tasks.mail.poll_mail")
def poll_mail() -> dict[str, Any] | None:
    """Every minute: read the enabled mailboxes; new mail opens tickets, replies thread into them."""
    run = job_run_scheduled(job="poll_mail", work=mailboxes_poll)
    return run.detail if run else None
