"""The PITR jobs are on Beat (weekly full, daily differential except on Sundays, a monthly drill) on the backups
queue, and skip without failing while point-in-time recovery is not configured."""

from __future__ import annotations

import pytest

from itsm.models import JobRun, RecoveryDrill
from itsm.tasks.pitr import pitr_backup, pitr_drill
from itsm_project.celery import app


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
    assert "skipped" in pitr_drill()

    assert set(JobRun.objects.values_list("job", "status")) == {
        ("pitr_backup_full", "succeeded"),
        ("pitr_drill", "succeeded"),
    }
    assert not RecoveryDrill.objects.exists()
