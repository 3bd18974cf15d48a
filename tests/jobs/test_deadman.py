"""The dead-man switch: a job that misses its slot plus grace raises an alert and ONE high incident, kept while the
problem lasts; a fresh install or a newly added job pages nobody; a duplicated tick changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY

from itsm.models import Alert, Event, Incident, JobRun, JobWatch
from itsm.services.deadman import FINGERPRINT_PREFIX, GROUP_KEY, job_states, jobs_watch
from itsm.services.job_schedule import job_get, jobs_all
from itsm.tasks.jobs import watch_jobs
from tests.jobs.conftest import MONDAY, all_ran, ran

pytestmark = pytest.mark.django_db

# The cleanup (daily 03:15, grace 1 h: its `expires`) has missed its slot from 04:15 on.
AFTER_CLEANUP_GRACE = MONDAY.replace(hour=4, minute=20)


def tick(at):
    """One Beat tick of the switch at a frozen moment, through its task (so once per slot)."""
    with time_machine.travel(at, tick=False):
        return watch_jobs()


def missed_alert(job: str) -> Alert:
    return Alert.objects.get(fingerprint=f"{FINGERPRINT_PREFIX}{job}")


def test_a_fresh_install_pages_nobody():
    detail = tick(MONDAY)
    assert detail["missed"] == []
    assert set(JobWatch.objects.values_list("job", flat=True)) == {job.name for job in jobs_all()}
    assert not Alert.objects.exists()
    assert not Incident.objects.exists()


def test_a_missed_slot_raises_the_alert_and_exactly_one_high_incident():
    tick(MONDAY)
    all_ran(AFTER_CLEANUP_GRACE - timedelta(minutes=1), except_=["cleanup"])

    detail = tick(AFTER_CLEANUP_GRACE)

    assert detail["missed"] == ["cleanup"]
    assert detail["fired"] == ["cleanup"]
    alert = missed_alert("cleanup")
    assert alert.status == Alert.Status.FIRING
    assert alert.labels["job"] == "cleanup"
    assert "was due at 2030-01-07 03:15:00 UTC" in alert.annotations["description"]
    incident = Incident.objects.get()
    assert (incident.severity, incident.source, incident.group_key) == ("high", "rule", GROUP_KEY)
    assert incident.title == "Scheduled job cleanup missed its slot"
    assert alert.incident_id == incident.pk

    # Later ticks while the job is still missing send nothing again: one alert delivery, one incident.
    for minutes in (1, 2, 30):
        at = AFTER_CLEANUP_GRACE + timedelta(minutes=minutes)
        all_ran(at - timedelta(seconds=5), except_=["cleanup"])
        assert tick(at)["fired"] == []
    assert missed_alert("cleanup").receive_count == 1
    assert Incident.objects.count() == 1
    assert incident.events.filter(kind=Event.Kind.ALERT).count() == 1


def test_a_job_is_not_missed_before_its_grace_period_is_over():
    tick(MONDAY)
    all_ran(MONDAY.replace(hour=4, minute=14), except_=["cleanup"])
    assert tick(MONDAY.replace(hour=4, minute=14))["missed"] == []
    # An interval job: due one period after its last run, missed once the grace (300 s) is over too.
    scan = job_get("scan_sla")
    assert scan is not None
    last = MONDAY.replace(hour=5)
    assert scan.missed_due(now=last + timedelta(seconds=360), last_started=last, watched_since=MONDAY) is None
    due = scan.missed_due(now=last + timedelta(seconds=361), last_started=last, watched_since=MONDAY)
    assert due == last + timedelta(minutes=1)


def test_a_duplicated_scheduler_tick_changes_nothing():
    tick(MONDAY)
    all_ran(AFTER_CLEANUP_GRACE - timedelta(minutes=1), except_=["cleanup"])
    first = tick(AFTER_CLEANUP_GRACE)
    second = tick(AFTER_CLEANUP_GRACE + timedelta(seconds=20))  # the same one-minute slot, from a second Beat

    assert first is not None
    assert second is None
    assert JobRun.objects.filter(job="watch_jobs").count() == 2  # MONDAY's tick and this slot's
    assert Alert.objects.count() == 1
    assert Incident.objects.count() == 1


def test_the_alert_resolves_when_the_job_runs_again_and_the_incident_stays_open_for_a_person():
    tick(MONDAY)
    all_ran(AFTER_CLEANUP_GRACE - timedelta(minutes=1), except_=["cleanup"])
    tick(AFTER_CLEANUP_GRACE)
    later = AFTER_CLEANUP_GRACE + timedelta(minutes=3)
    all_ran(later - timedelta(seconds=5))  # cleanup included: someone ran it (or Beat is back)

    detail = tick(later)

    assert detail["resolved"] == ["cleanup"]
    assert missed_alert("cleanup").status == Alert.Status.RESOLVED
    incident = Incident.objects.get()
    assert incident.status == Incident.Status.DETECTED
    assert incident.events.filter(kind=Event.Kind.ALERT, new_value="resolved").count() == 1
    assert tick(later + timedelta(minutes=1))["resolved"] == []


def test_a_second_missed_job_joins_the_open_incident():
    tick(MONDAY)
    all_ran(AFTER_CLEANUP_GRACE - timedelta(minutes=1), except_=["cleanup"])
    tick(AFTER_CLEANUP_GRACE)
    # Beat stops: nothing runs any more, and the every-30-seconds jobs are missed after their period and grace.
    detail = tick(AFTER_CLEANUP_GRACE + timedelta(minutes=10))

    assert "scan_sla" in detail["fired"]
    assert "escalate_incidents" in detail["fired"]
    assert Incident.objects.count() == 1
    assert Alert.objects.filter(status="firing", incident=Incident.objects.get()).count() == len(detail["missed"])


def test_a_job_added_to_the_schedule_is_judged_only_on_the_slots_after_it_was_first_seen():
    tick(MONDAY)
    # VACUUM "appears" on Tuesday (an upgrade): the Sunday before is not its slot.
    JobWatch.objects.filter(job="vacuum_database").update(first_seen_at=MONDAY + timedelta(days=1))
    tuesday = MONDAY + timedelta(days=1, hours=1)
    all_ran(tuesday - timedelta(minutes=1), except_=["vacuum_database"])
    assert "vacuum_database" not in tick(tuesday)["missed"]
    # The next Sunday at 05:30, plus its 6 h grace, without a run: missed.
    sunday = MONDAY + timedelta(days=6, hours=11, minutes=31)
    all_ran(sunday - timedelta(minutes=1), except_=["vacuum_database"])
    assert tick(sunday)["missed"] == ["vacuum_database"]


def test_a_job_that_runs_and_fails_is_failing_not_missed():
    tick(MONDAY)
    all_ran(AFTER_CLEANUP_GRACE - timedelta(minutes=1), except_=["cleanup"])
    ran("cleanup", MONDAY.replace(hour=3, minute=15), status=JobRun.Status.FAILED)
    with time_machine.travel(AFTER_CLEANUP_GRACE, tick=False):
        states = {state.job.name: state for state in job_states(jobs_all())}
    assert states["cleanup"].state == "failing"
    assert states["scan_sla"].state == "ok"
    assert tick(AFTER_CLEANUP_GRACE)["missed"] == []


def test_the_switch_sets_every_jobs_last_success_and_period_from_the_database():
    tick(MONDAY)
    success = ran("cleanup", MONDAY.replace(hour=3, minute=15))
    ran("cleanup", MONDAY.replace(hour=3, minute=16), status=JobRun.Status.FAILED)
    tick(MONDAY.replace(hour=3, minute=17))
    assert success.finished_at is not None
    last_success = REGISTRY.get_sample_value("itsm_job_last_success_timestamp_seconds", {"job": "cleanup"})
    assert last_success is not None
    assert last_success >= success.finished_at.timestamp()
    assert REGISTRY.get_sample_value("itsm_job_period_seconds", {"job": "vacuum_database"}) == 7 * 86400
    assert REGISTRY.get_sample_value("itsm_job_period_seconds", {"job": "escalate_incidents"}) == 30


def test_a_manual_run_whose_message_was_lost_is_failed_after_a_day():
    stale = JobRun.objects.create(
        job="cleanup", slot=MONDAY, started_at=MONDAY, status=JobRun.Status.QUEUED, trigger=JobRun.Trigger.MANUAL
    )
    fresh = JobRun.objects.create(
        job="cleanup",
        slot=MONDAY + timedelta(hours=23),
        started_at=MONDAY + timedelta(hours=23),
        status=JobRun.Status.QUEUED,
        trigger=JobRun.Trigger.MANUAL,
    )
    with time_machine.travel(MONDAY + timedelta(days=1, minutes=1), tick=False):
        assert jobs_watch()["queued_runs_expired"] == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.detail["error"]) == ("failed", "No worker picked up this run.")
    assert fresh.status == "queued"
