"""The PITR jobs are on Beat (weekly full, daily differential except on Sundays, a monthly drill) on the backups
queue, and skip without failing while point-in-time recovery is not configured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from itsm.backup.pgbackrest import PitrError
from itsm.models import Backup, JobRun, RecoveryDrill
from itsm.services.backups import backup_age_problems
from itsm.tasks.backups import scheduled_backup
from itsm.tasks.pitr import pitr_backup, pitr_drill
from itsm_project.celery import app
from tests.pitr.conftest import needs_pgbackrest

MOMENT = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)


def test_the_pitr_jobs_are_on_the_beat_schedule_and_the_backups_queue():
    schedule = app.conf.beat_schedule
    full, diff, drill = schedule["pitr_backup_full"], schedule["pitr_backup_diff"], schedule["pitr_drill"]
    assert (full["args"], diff["args"]) == (("full",), ("diff",))
    assert full["schedule"].day_of_week == {0}
    assert diff["schedule"].day_of_week == {1, 2, 3, 4, 5, 6}
    assert drill["schedule"].day_of_month == {3}
    assert app.amqp.router.route({}, "itsm.tasks.pitr.pitr_drill")["queue"].name == "backups"


@pytest.mark.django_db
def test_without_pitr_configured_the_jobs_skip_and_succeed(settings):
    settings.BACKUP_PITR_STANZA = ""

    assert pitr_backup("full") == {"skipped": "point-in-time recovery is not configured (BACKUP_PITR_STANZA)"}
    assert pitr_drill() == {"skipped": "point-in-time recovery is not configured (BACKUP_PITR_STANZA)"}

    assert set(JobRun.objects.values_list("job", "status")) == {
        ("pitr_backup_full", "succeeded"),
        ("pitr_drill", "succeeded"),
    }
    assert not RecoveryDrill.objects.exists()


@pytest.mark.django_db
def test_with_wal_archiving_the_hourly_age_check_leaves_the_hourly_dump_out(settings):
    settings.BACKUP_PITR_STANZA = "itsm"
    JobRun.objects.create(job="scan_sla", slot=MOMENT - timedelta(days=40), started_at=MOMENT - timedelta(days=40))

    with_pitr = {(p.kind, p.tier) for p in backup_age_problems(now=MOMENT)}
    settings.BACKUP_PITR_STANZA = ""
    without = {(p.kind, p.tier) for p in backup_age_problems(now=MOMENT)}

    assert ("database", "hourly") in without
    assert ("database", "hourly") not in with_pitr
    assert ("database", "daily") in with_pitr  # the logical dumps stay on their GFS schedule


@needs_pgbackrest
@pytest.mark.slow
@pytest.mark.django_db
def test_with_wal_archiving_the_hourly_job_runs_pgbackrest_check_instead_of_a_dump(archived):
    detail = scheduled_backup("database", "hourly")

    assert detail == {"pitr_check": "ok", "requeued": []}
    assert not Backup.objects.exists()
    daily = scheduled_backup("database", "daily")
    assert daily is not None
    assert daily["backup_id"] == Backup.objects.get().pk


@pytest.mark.django_db
def test_with_a_broken_repository_the_hourly_job_fails(settings, tmp_path):
    settings.BACKUP_PITR_STANZA = "itsm"
    settings.BACKUP_PITR_CONFIG = str(tmp_path / "missing.conf")
    settings.BACKUP_PITR_OS_USER = ""

    with pytest.raises(PitrError, match="pgbackrest check failed"):
        scheduled_backup("database", "hourly")

    assert JobRun.objects.get(job="backup_database_hourly").status == JobRun.Status.FAILED
