from typing import Any

from celery import shared_task

from itsm.services.alert_rules import alert_rules_evaluate
from itsm.services.jobs import job_run_scheduled


@shared_task(name="itsm.tasks.alert_rules.evaluate_alert_rules")
def evaluate_alert_rules() -> dict[str, Any] | None:
    """Every 30 s: evaluate the alert rules edited in the admin."""
    run = job_run_scheduled(job="evaluate_alert_rules", work=alert_rules_evaluate)
    return run.detail if run else None
