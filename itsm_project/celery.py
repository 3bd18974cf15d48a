"""The Celery app `itsm_project`: named queues and the Beat schedule as literal data."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Exchange, Queue

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
    "itsm.tasks.maintenance.*": {"queue": "default"},
}

# Every job is idempotent per scheduled slot (JobRun rows), so a duplicated message or a second beat is harmless.
# `expires` drops a message that waited longer than its period: the next slot does the work instead.
app.conf.beat_schedule = {
    "scan-ticket-sla": {
        "task": "itsm.tasks.sla.scan_sla",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "cleanup-sessions-and-tokens": {
        "task": "itsm.tasks.maintenance.cleanup_sessions_and_tokens",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 3600},
    },
}

app.autodiscover_tasks(["itsm"], related_name="tasks")
