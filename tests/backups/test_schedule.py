"""The Beat schedule of backups, the daily backup age check and the requeue of backups whose message was lost."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from itsm.models import Backup, Incident, JobRun
from itsm.services.backups import (
    MAX_AGE,
    RUN_TASK,
    BackupsTooOld,
    backup_age_problems,
    backup_check_age,
    backup_resume_stale,
)
from itsm.tasks.backups import check_backup_age
from itsm_project.celery import app
from tests.backups.conftest import sample

pytestmark = pytest.mark.django_db


def verified(kind: str, tier: str, age: timedelta) -> Backup:
    at = timezone.now() - age
    return Backup.objects.create(
        kind=kind,
        tier=tier,
        status="succeeded",
        verified_ok=True,
        created_at=at,
        started_at=at,
        finished_at=at,
        sha256="b" * 64,
    )


def test_beat_schedules_every_tier_of_the_manual_plus_redis_media_the_check_and_the_drill():
    backups = {
        tuple(entry["args"]): name
        for name, entry in app.conf.beat_schedule.items()
        if entry["task"] == "itsm.tasks.backups.scheduled_backup"
    }
    assert set(backups) == set(MAX_AGE)
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"itsm.tasks.backups.check_backup_age", "itsm.tasks.backups.restore_drill"} <= tasks


TASKS = ["scheduled_backup", "run_backup", "verify_backup", "check_backup_age", "restore_drill"]


@pytest.mark.parametrize("task", TASKS)
def test_backup_tasks_go_to_the_backups_queue(task):
    route = app.amqp.router.route({}, f"itsm.tasks.backups.{task}")
    assert route["queue"].name == "backups"


def test_the_age_check_passes_when_every_scheduled_backup_is_recent():
    for kind, tier in MAX_AGE:
        verified(kind, tier, timedelta(minutes=30))
    assert check_backup_age() == {"checked": [f"{kind}/{tier}" for kind, tier in MAX_AGE]}
    assert JobRun.objects.get(job="backup_age_check").status == JobRun.Status.SUCCEEDED


def test_the_age_check_fails_and_counts_when_the_newest_verified_backup_is_too_old():
    for kind, tier in MAX_AGE:
        verified(kind, tier, timedelta(minutes=30))
    verified("database", "hourly", timedelta(hours=1))
    Backup.objects.filter(kind="database", tier="hourly").update(started_at=timezone.now() - timedelta(hours=3))
    # A newer backup that failed verification does not count.
    now = timezone.now()
    Backup.objects.create(
        kind="database", tier="hourly", status="succeeded", verified_ok=False, created_at=now, started_at=now
    )
    before = sample("itsm_backup_age_check_failures_total", kind="database", tier="hourly")

    result = check_backup_age()

    assert result == {"problems": ["the newest verified database hourly backup is 3.0 hours old (at most 2.0 hours)"]}
    run = JobRun.objects.get(job="backup_age_check")
    assert run.status == JobRun.Status.FAILED
    assert "database hourly" in run.detail["error"]
    assert sample("itsm_backup_age_check_failures_total", kind="database", tier="hourly") == before + 1
    assert sample("itsm_backup_newest_verified_age_seconds", kind="database", tier="hourly") >= 3 * 3600 - 5
    incident = Incident.objects.get(source="rule")
    assert (incident.severity, incident.group_key) == ("high", "rule:backup-age")
    assert "database hourly" in incident.summary


def test_a_backup_age_problem_that_persists_adds_to_the_open_incident_instead_of_opening_another():
    verified("database", "hourly", timedelta(hours=1))
    Backup.objects.filter(kind="database", tier="hourly").update(started_at=timezone.now() - timedelta(hours=5))
    JobRun.objects.create(
        job="scan_sla", slot=timezone.now() - timedelta(days=3), started_at=timezone.now() - timedelta(days=3)
    )
    with pytest.raises(BackupsTooOld):
        backup_check_age()
    with pytest.raises(BackupsTooOld):
        backup_check_age()
    incident = Incident.objects.get(source="rule")
    assert incident.events.filter(kind="note", note__startswith="Still failing").count() == 1


def test_a_fresh_install_is_not_an_alert_until_a_backup_was_due():
    assert backup_age_problems() == []
    JobRun.objects.create(job="scan_sla", slot=timezone.now(), started_at=timezone.now() - timedelta(hours=3))
    problems = backup_age_problems()
    assert [(p.kind, p.tier) for p in problems] == [("database", "hourly")]
    assert problems[0].newest_verified_at is None


def test_a_backup_whose_message_was_lost_is_queued_again_and_one_stuck_for_a_day_is_given_up():
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("backups")
    now = timezone.now()
    lost = Backup.objects.create(kind="database", created_at=now - timedelta(minutes=20))
    fresh = Backup.objects.create(kind="database", created_at=now - timedelta(minutes=1))
    stuck = Backup.objects.create(kind="database", status="running", created_at=now - timedelta(days=2))
    try:
        assert backup_resume_stale(now=now) == [lost.pk]
        queued: list[dict[str, Any]] = [json.loads(raw) for raw in broker.lrange("backups", 0, -1)]
        assert [m["headers"]["task"] for m in queued] == [RUN_TASK]
        assert json.loads(queued[0]["headers"]["argsrepr"].replace("(", "[").replace(",)", "]")) == [lost.pk]
    finally:
        broker.delete("backups")
    fresh.refresh_from_db()
    stuck.refresh_from_db()
    assert fresh.status == Backup.Status.PENDING
    assert stuck.status == Backup.Status.FAILED
    assert "abandoned" in stuck.error
