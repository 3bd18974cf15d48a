"""Celery entry points. Each takes ids or nothing, loads what it needs and calls one service."""

from itsm.tasks.alert_rules import evaluate_alert_rules
from itsm.tasks.backups import check_backup_age, restore_drill, run_backup, scheduled_backup, verify_backup
from itsm.tasks.cleanup import cleanup
from itsm.tasks.jobs import run_job_now, watch_jobs
from itsm.tasks.maintenance import run_maintenance_windows
from itsm.tasks.monitoring import refresh_metrics
from itsm.tasks.notifications import deliver_notification, relay_notifications
from itsm.tasks.paging import escalate_incidents
from itsm.tasks.sla import recompute_sla, scan_sla
from itsm.tasks.vacuum import vacuum_database

__all__ = [
    "check_backup_age",
    "cleanup",
    "deliver_notification",
    "escalate_incidents",
    "evaluate_alert_rules",
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
