"""The job registry is the Beat schedule: every entry records its runs under its own name, once per slot however
many Beats send it, and its schedule reads in words with due times computed from the crontab or interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from celery.schedules import crontab

from itsm.models import JobRun
from itsm.services.job_schedule import ScheduledJob, jobs_all
from itsm.services.jobs import job_run_scheduled
from itsm_project.celery import app
from tests.jobs.conftest import MONDAY


def job(schedule, expires=None) -> ScheduledJob:
    return ScheduledJob("example", "itsm.tasks.example", (), {}, "default", schedule, expires)


def send_every_entry_once() -> None:
    """What Beat does: each entry's task with its arguments (here called in-process, as a worker would)."""
    for entry in app.conf.beat_schedule.values():
        try:
            app.tasks[entry["task"]](*entry.get("args", ()), **entry.get("kwargs", {}))
        except Exception:  # noqa: S112 (a job may fail here, e.g. a restore drill with no backup: it is recorded)
            continue


@pytest.mark.django_db
def test_every_beat_entry_records_its_runs_under_its_own_name_once_per_slot_with_two_beats():
    with time_machine.travel(MONDAY.replace(hour=3, minute=15), tick=False):
        send_every_entry_once()
        send_every_entry_once()  # a second Beat sends the same slot again
    names = sorted(app.conf.beat_schedule)
    assert sorted(JobRun.objects.values_list("job", flat=True)) == names
    assert JobRun.objects.filter(status=JobRun.Status.RUNNING).count() == 0


@pytest.mark.parametrize(
    ("schedule", "words", "cron"),
    [
        (30.0, "every 30 s", None),
        (60.0, "every 1 min", None),
        (timedelta(hours=2), "every 2 h", None),
        (crontab(minute=5), "hourly at minute 5", "5 * * * *"),
        (crontab(hour=3, minute=15), "daily at 03:15 UTC", "15 3 * * *"),
        (crontab(day_of_week="sunday", hour=5, minute=30), "weekly on Sunday at 05:30 UTC", "30 5 * * sunday"),
        (crontab(day_of_week=1, hour=5, minute=30), "weekly on Monday at 05:30 UTC", "30 5 * * 1"),
        (crontab(day_of_month=2, hour=5, minute=0), "monthly on day 2 at 05:00 UTC", "0 5 2 * *"),
        (crontab(minute="*/15"), "cron */15 * * * * UTC", "*/15 * * * *"),
        (crontab(hour="8-18", minute=0, day_of_week="mon-fri"), "cron 0 8-18 * * mon-fri UTC", "0 8-18 * * mon-fri"),
    ],
)
def test_a_schedule_reads_in_words_and_as_cron(schedule, words, cron):
    assert job(schedule).describe() == words
    assert job(schedule).cron == cron


def test_due_times_of_a_crontab_cross_months_and_leap_days():
    monthly = job(crontab(day_of_month=1, hour=4, minute=20))
    at = datetime(2030, 1, 31, 23, 0, tzinfo=UTC)
    assert monthly.previous_due(at) == datetime(2030, 1, 1, 4, 20, tzinfo=UTC)
    assert monthly.next_due(at) == datetime(2030, 2, 1, 4, 20, tzinfo=UTC)
    assert monthly.period(at) == timedelta(days=31)
    leap = job(crontab(day_of_month=29, month_of_year=2, hour=0, minute=0))
    assert leap.next_due(datetime(2030, 3, 1, tzinfo=UTC)) == datetime(2032, 2, 29, tzinfo=UTC)
    assert leap.previous_due(datetime(2030, 3, 1, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)
    # Exactly at a due time: that is the previous due time, and the next one is a day later.
    daily = job(crontab(hour=3, minute=15))
    at = datetime(2030, 1, 7, 3, 15, tzinfo=UTC)
    assert (daily.previous_due(at), daily.next_due(at)) == (at, at + timedelta(days=1))


def test_the_grace_is_the_setting_or_the_time_the_message_may_wait(settings):
    settings.ITSM_JOB_GRACE_SECONDS = 120
    assert job(30.0, expires=25).grace() == timedelta(seconds=120)
    assert job(crontab(hour=3, minute=15), expires=3600).grace() == timedelta(hours=1)


def test_each_job_is_routed_to_its_queue():
    queues = {scheduled.name: scheduled.queue for scheduled in jobs_all()}
    assert queues["scan_sla"] == "critical"
    assert queues["watch_jobs"] == "critical"
    assert queues["backup_age_check"] == "backups"
    assert queues["cleanup"] == queues["vacuum_database"] == "default"


@pytest.mark.parametrize(
    ("schedule", "slot"),
    [
        (30.0, timedelta(seconds=30)),
        (crontab(minute=5), timedelta(hours=1)),
        (crontab(minute="*/15"), timedelta(minutes=15)),
        (crontab(hour="8-18", minute=0, day_of_week="mon-fri"), timedelta(hours=1)),
        (crontab(hour=3, minute=15), timedelta(days=1)),
        (crontab(day_of_week="sunday", hour=5, minute=30), timedelta(days=7)),
        (crontab(day_of_month=1, hour=4, minute=20), timedelta(days=28)),
    ],
)
def test_a_jobs_slot_is_the_shortest_gap_between_its_due_times(schedule, slot):
    assert job(schedule).slot == slot


def test_the_slot_of_each_scheduled_job_comes_from_its_beat_entry():
    slots = {scheduled.name: scheduled.slot for scheduled in jobs_all()}
    minute, day = timedelta(minutes=1), timedelta(days=1)
    assert slots == {
        "scan_sla": minute,
        "escalate_incidents": timedelta(seconds=30),
        "evaluate_alert_rules": timedelta(seconds=30),
        "refresh_metrics": timedelta(seconds=30),
        "maintenance_windows": minute,
        "relay_notifications": minute,
        "poll_mail": minute,
        "ticket_notices": minute,
        "backup_database_hourly": timedelta(hours=1),
        "backup_database_daily": day,
        "backup_database_weekly": 7 * day,
        "backup_database_monthly": 28 * day,
        "backup_redis_daily": day,
        "backup_media_daily": day,
        "backup_age_check": day,
        "backup_restore_drill": 28 * day,
        "pitr_backup_full": 7 * day,
        "pitr_backup_diff": day,
        "pitr_drill": 28 * day,
        "cleanup": day,
        "vacuum_database": 7 * day,
        "watch_jobs": minute,
    }


def test_a_job_outside_the_schedule_is_refused_rather_than_run_in_a_made_up_slot(db):
    with pytest.raises(LookupError, match="not in the Beat schedule"):
        job_run_scheduled(job="no_such_job", work=dict)
    assert not JobRun.objects.exists()
