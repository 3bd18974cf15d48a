"""Celery entry points. Each takes ids or nothing, loads what it needs and calls one service."""

from itsm.tasks.alert_rules import evaluate_alert_rules
from itsm.tasks.backups import check_backup_age, restore_drill, run_backup, scheduled_backup, verify_backup
from itsm.tasks.cleanup import cleanup
from itsm.tasks.jobs import run_job_now, watch_jobs
from itsm.tasks.mail import poll_mail
from itsm.tasks.maintenance import run_maintenance_windows
from itsm.tasks.monitoring import refresh_metrics
from itsm.tasks.notifications import deliver_notification, relay_notifications
from itsm.tasks.paging import escalate_incidents
from itsm.tasks.pitr import pitr_backup, pitr_drill
from itsm.tasks.sla import recompute_sla, scan_sla
from itsm.tasks.ticket_notifications import catch_up_ticket_notices, expand_ticket_notices
from itsm.tasks.vacuum import vacuum_database

__all__ = [
    "catch_up_ticket_notices",
    "check_backup_age",
    "cleanup",
    "deliver_notification",
    "escalate_incidents",
    "evaluate_alert_rules",
    "expand_ticket_notices",
    "pitr_backup",
    "pitr_drill",
    "poll_mail",
    "recompute_sla",
    "refresh_metrics",
    "relay_notifications",
    "restore_drill",
    "run_backup",
    "run_job_now",
    "run_maintenance_windows",
    "scan_sla",
    "scheduled_backup",
    "vacuum_database",
    "verify_backup",
    "watch_jobs",
]
