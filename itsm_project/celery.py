"""The Celery app `itsm_project`: named queues and the Beat schedule as literal data."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Exchange, Queue

# Before the worker sets up logging: its receivers keep Django's LOGGING and carry the request id (docs/operations.md).
from itsm import log_context  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itsm_project.settings")

app = Celery("itsm_project")
app.config_from_object("django.conf:settings", namespace="CELERY")

# Paging must never wait behind a slow backup or a flood of e-mails: each kind of work has its own queue.
QUEUES = ("critical", "notifications", "backups", "default")
app.conf.task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]
app.conf.task_routes = {
    # The first matching pattern wins: the long recompute must not hold up the every-minute scan.
    "itsm.tasks.sla.recompute_sla": {"queue": "default"},
    "itsm.tasks.sla.*": {"queue": "critical"},
    "itsm.tasks.paging.*": {"queue": "critical"},
    "itsm.tasks.alert_rules.*": {"queue": "critical"},
    # The dead-man switch pages; a manual run ("run now") is sent to its job's own queue explicitly.
    "itsm.tasks.jobs.*": {"queue": "critical"},
    "itsm.tasks.maintenance.*": {"queue": "default"},
    "itsm.tasks.cleanup.*": {"queue": "default"},
    "itsm.tasks.mail.*": {"queue": "default"},
    "itsm.tasks.vacuum.*": {"queue": "default"},
    "itsm.tasks.monitoring.*": {"queue": "default"},
    "itsm.tasks.backups.*": {"queue": "backups"},
    "itsm.tasks.pitr.*": {"queue": "backups"},
    # Urgent deliveries (pages) are sent to the critical queue explicitly; the rest wait here.
    "itsm.tasks.notifications.*": {"queue": "notifications"},
    "itsm.tasks.ticket_notifications.*": {"queue": "notifications"},
}

# Every job is idempotent per scheduled slot (JobRun rows), so a duplicated message or a second beat is harmless.
# The schedule is the one place a job's period is written: its slot (one run at most) is derived from it
# (itsm.services.job_schedule.ScheduledJob.slot).
# Each entry's name is the name its runs are recorded under (JobRun.job, the `job` label of the job metrics), and
# `GET /api/v1/jobs/` lists exactly these entries (itsm.services.job_schedule).
# `expires` drops a message that waited longer than its period: the next slot does the work instead.
app.conf.beat_schedule = {
    "scan_sla": {
        "task": "itsm.tasks.sla.scan_sla",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Unacknowledged critical and high incidents page the next person when their escalation time comes.
    "escalate_incidents": {
        "task": "itsm.tasks.paging.escalate_incidents",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # The alert rules edited in the admin (built-in checks and PromQL), pending → firing → resolved.
    "evaluate_alert_rules": {
        "task": "itsm.tasks.alert_rules.evaluate_alert_rules",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Gauges only a query can tell: open tickets, queue lengths, unapplied migrations (docs/monitoring.md).
    "refresh_metrics": {
        "task": "itsm.tasks.monitoring.refresh_metrics",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Maintenance windows: announce ahead, back up and start, end and verify (docs: the manual's checklist).
    "maintenance_windows": {
        "task": "itsm.tasks.maintenance.run_maintenance_windows",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Mail in (docs/email.md): new mail opens tickets, replies thread into them. Off while no mailbox is set up.
    "poll_mail": {
        "task": "itsm.tasks.mail.poll_mail",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Ticket e-mail: the notices the services wrote, expanded into e-mails. Each change queues that at once; this
    # catches up when that message was lost.
    "ticket_notices": {
        "task": "itsm.tasks.ticket_notifications.catch_up_ticket_notices",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # The outbox relay: queues due notifications (lost messages, retries with backoff, rows of dead workers).
    "relay_notifications": {
        "task": "itsm.tasks.notifications.relay_notifications",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Backups (docs/runbooks/backup-restore.md): the manual's four database tiers, Redis and media daily, a daily
    # check that recent verified backups exist, and a monthly restore drill from S3. Minutes are staggered so that
    # two dumps do not start together.
    "backup_database_hourly": {
        "task": "itsm.tasks.backups.scheduled_backup",
        "schedule": crontab(minute=5),
        "args": ("database", "hourly"),
        "options": {"expires": 3000},
    },
    "backup_database_daily": {
        "task": "itsm.tasks.backups.scheduled_backup",
        "schedule": crontab(hour=2, minute=20),
        "args": ("database", "daily"),
        "options": {"expires": 3 * 3600},
    },
    "backup_database_weekly": {
        "task": "itsm.tasks.backups.scheduled_backup",
        "schedule": crontab(day_of_week="sunday", hour=3, minute=20),
        "args": ("database", "weekly"),
        "options": {"expires": 6 * 3600},
    },
    "backup_database_monthly": {
        "task": "itsm.tasks.backups.scheduled_backup",
        "schedule": crontab(day_of_month=1, hour=4, minute=20),
        "args": ("database", "monthly"),
        "options": {"expires": 6 * 3600},
    },
    "backup_redis_daily": {
        "task": "itsm.tasks.backups.scheduled_backup",
        "schedule": crontab(hour=2, minute=35),
        "args": ("redis", "daily"),
        "options": {"expires": 3 * 3600},
    },
    "backup_media_daily": {
        "task": "itsm.tasks.backups.scheduled_backup",
        "schedule": crontab(hour=2, minute=50),
        "args": ("media", "daily"),
        "options": {"expires": 3 * 3600},
    },
    "backup_age_check": {
        "task": "itsm.tasks.backups.check_backup_age",
        "schedule": crontab(hour=7, minute=0),
        "options": {"expires": 6 * 3600},
    },
    "backup_restore_drill": {
        "task": "itsm.tasks.backups.restore_drill",
        "schedule": crontab(day_of_month=2, hour=5, minute=0),
        "options": {"expires": 12 * 3600},
    },
    # Point-in-time recovery (docs/runbooks/backup-restore.md#point-in-time-recovery): pgBackRest's weekly full
    # and daily differential backups (WAL is archived continuously by PostgreSQL), and the monthly PITR drill.
    # Each job skips while BACKUP_PITR_STANZA is unset.
    "pitr_backup_full": {
        "task": "itsm.tasks.pitr.pitr_backup",
        "schedule": crontab(day_of_week="sunday", hour=1, minute=10),
        "args": ("full",),
        "options": {"expires": 6 * 3600},
    },
    "pitr_backup_diff": {
        "task": "itsm.tasks.pitr.pitr_backup",
        # Not on Sundays, when the full backup runs (pgBackRest would refuse the second one, its lock taken).
        "schedule": crontab(day_of_week="mon-sat", hour=1, minute=10),
        "args": ("diff",),
        "options": {"expires": 6 * 3600},
    },
    "pitr_drill": {
        "task": "itsm.tasks.pitr.pitr_drill",
        "schedule": crontab(day_of_month=3, hour=5, minute=0),
        "options": {"expires": 12 * 3600},
    },
    # The manual's maintenance jobs (docs/operations.md#scheduled-jobs): records past their retention, daily, and
    # VACUUM ANALYZE weekly, after the Sunday backups.
    "cleanup": {
        "task": "itsm.tasks.cleanup.cleanup",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 3600},
    },
    "vacuum_database": {
        "task": "itsm.tasks.vacuum.vacuum_database",
        "schedule": crontab(day_of_week="sunday", hour=5, minute=30),
        "options": {"expires": 6 * 3600},
    },
    # The dead-man switch: a job above that missed its slot opens an alert and one high incident.
    "watch_jobs": {
        "task": "itsm.tasks.jobs.watch_jobs",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}

app.autodiscover_tasks(["itsm"], related_name="tasks")
