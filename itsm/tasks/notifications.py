from typing import Any

from celery import shared_task

from itsm.services.jobs import job_run_scheduled
from itsm.services.notification_delivery import notification_deliver
from itsm.services.notifications import notification_relay


@shared_task(name="itsm.tasks.notifications.deliver_notification", soft_time_limit=60, time_limit=90)
def deliver_notification(notification_id: int) -> str | None:
    """One delivery attempt of an outbox row; retries are scheduled on the row and queued by the relay."""
    notification = notification_deliver(notification_id=notification_id)
    return notification.status if notification else None


@shared_task(name="itsm.tasks.notifications.relay_notifications")
def relay_notifications() -> dict[str, Any] | None:
    """Every minute: queue the pending notifications that are due (lost messages, retries, dead workers)."""
    run = job_run_scheduled(job="relay_notifications", work=notification_relay)
    return run.detail if run else None
