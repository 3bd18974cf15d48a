"""The every-minute job with frozen time: announce once, back up first, start, end and verify."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from itsm.models import Backup, Incident, JobRun, MaintenanceWindow, Notification
from itsm.services.maintenance_lifecycle import maintenance_tick, maintenance_transition
from itsm.tasks import run_maintenance_windows
from tests.maintenance.conftest import START

Status = MaintenanceWindow.Status


def announcements() -> list[Notification]:
    return list(Notification.objects.filter(subject__startswith="Maintenance scheduled for"))


def tick_at(moment: Any) -> dict[str, Any] | None:
    with time_machine.travel(moment, tick=False):
        return run_maintenance_windows()


def test_nothing_happens_before_the_announcement_time(make_window):
    window = make_window()
    assert tick_at(START - timedelta(hours=2)) is not None
    assert announcements() == []
    window.refresh_from_db()
    assert window.status == Status.SCHEDULED
    assert window.announced_at is None


def test_the_announcement_goes_out_once_to_the_named_people_and_the_service_team(make_window, requester):
    window = make_window(notify_users=[requester])
    tick_at(START - timedelta(minutes=59))
    tick_at(START - timedelta(minutes=30))
    tick_at(START - timedelta(minutes=10))
    sent = announcements()
    assert sorted(n.target for n in sent) == ["paula@example.com", "rita@example.com"]
    for notification in sent:
        assert notification.subject.startswith("Maintenance scheduled for 2030-03-03 02:00-02:30 UTC")
        assert "Services affected: Database" in notification.body
    window.refresh_from_db()
    assert window.announced_at == START - timedelta(minutes=59)


@pytest.mark.parametrize(("public", "subject_ends"), [(False, "UTC"), (True, "UTC: Database upgrade")])
def test_a_requester_named_on_a_window_reads_only_its_public_text(make_window, requester, public, subject_ends):
    make_window(
        notify_users=[requester],
        description="Upgrade db-primary-1 (10.0.4.12) to 16.4; failover to db-replica-2.",
        public=public,
        public_title="Database upgrade" if public else "",
    )
    tick_at(START - timedelta(minutes=59))

    staff, requesters = (
        [n for n in announcements() if n.target == address] for address in ("paula@example.com", "rita@example.com")
    )
    assert "PostgreSQL minor upgrade" in staff[0].subject
    assert "10.0.4.12" in staff[0].body
    assert len(requesters) == 1
    assert requesters[0].subject.endswith(subject_ends)
    for text in (requesters[0].subject, requesters[0].body):
        assert "PostgreSQL minor upgrade" not in text
        assert "10.0.4.12" not in text
    assert "Services affected: Database" in requesters[0].body


def test_a_duplicated_scheduler_run_in_the_same_minute_changes_nothing(make_window):
    make_window(backup_required=False)
    assert tick_at(START - timedelta(minutes=30)) is not None
    assert tick_at(START - timedelta(minutes=30, seconds=-20)) is None
    assert JobRun.objects.filter(job="maintenance_windows").count() == 1
    assert len(announcements()) == 1  # paula, of the service's team


def test_a_window_without_a_backup_gate_starts_at_its_start_time(make_window):
    window = make_window(backup_required=False)
    tick_at(START - timedelta(seconds=1))
    window.refresh_from_db()
    assert window.status == Status.SCHEDULED
    tick_at(START)
    window.refresh_from_db()
    assert window.status == Status.IN_PROGRESS
    assert window.started_at == START
    assert window.backup is None


def test_a_failed_backup_blocks_the_window_opens_one_high_incident_and_pages_the_owner(
    make_window, broken_backups, agent
):
    window = make_window()
    tick_at(START)
    tick_at(START + timedelta(minutes=1))
    window.refresh_from_db()
    assert window.status == Status.BLOCKED
    assert "pre-maintenance backup" in window.blocked_reason
    assert window.backup is not None
    assert window.backup.status == Backup.Status.FAILED
    assert window.backup.trigger == Backup.Trigger.PRE_MAINTENANCE
    incident = Incident.objects.get()
    assert incident.severity == Incident.Severity.HIGH
    assert list(window.incidents.all()) == [incident]
    assert f"MW-{window.pk}" in incident.title
    pages = Notification.objects.filter(incident=incident, urgent=True, recipient=agent)
    assert pages.exists()


def test_a_blocked_window_retried_after_its_backup_is_fixed_runs_the_gate_again(make_window, broken_backups, agent):
    window = make_window(backup_required=True)
    tick_at(START)
    MaintenanceWindow.objects.filter(pk=window.pk).update(backup_required=False)
    maintenance_transition(window_id=window.pk, actor=agent, to=Status.SCHEDULED)
    tick_at(START + timedelta(minutes=2))
    window.refresh_from_db()
    assert window.status == Status.IN_PROGRESS
    assert Incident.objects.count() == 1


def test_a_window_whose_end_passed_before_it_could_start_is_blocked(make_window):
    window = make_window(backup_required=False)
    tick_at(START + timedelta(hours=1))
    window.refresh_from_db()
    assert window.status == Status.BLOCKED
    assert "end passed" in window.blocked_reason


def completion_notices() -> list[Notification]:
    return list(Notification.objects.filter(subject__startswith="Maintenance completed successfully"))


def test_at_the_end_the_checks_run_every_minute_of_the_verification_period_then_the_window_completes(make_window):
    window = make_window(backup_required=False, verify_for=timedelta(minutes=5))
    tick_at(START)
    for minute in range(30, 35):
        tick_at(START + timedelta(minutes=minute))
        window.refresh_from_db()
        assert window.status == Status.VERIFYING, minute
        assert window.verification["runs"] == minute - 29
        assert window.verification["passed"] is True
    assert window.verify_until == START + timedelta(minutes=35)
    assert completion_notices() == []
    tick_at(START + timedelta(minutes=35))
    window.refresh_from_db()
    assert window.status == Status.COMPLETED
    assert window.verifying_at == START + timedelta(minutes=30)
    assert window.completed_at == START + timedelta(minutes=35)
    assert window.verification["runs"] == 6
    assert window.verification["results"] == [{"kind": "api_health", "ok": True}]
    assert sorted(n.target for n in completion_notices()) == ["paula@example.com"]
    assert Incident.objects.count() == 0
    tick_at(START + timedelta(minutes=36))
    assert len(completion_notices()) == 1


def test_a_verification_period_of_zero_checks_once_and_completes_at_the_end(make_window):
    window = make_window(backup_required=False, verify_for=timedelta(0))
    tick_at(START)
    tick_at(START + timedelta(minutes=30))
    window.refresh_from_db()
    assert window.status == Status.COMPLETED
    assert window.verifying_at == window.completed_at == START + timedelta(minutes=30)
    assert window.verification["runs"] == 1


def test_the_default_verification_period_comes_from_the_setting(make_window, settings):
    settings.ITSM_MAINTENANCE_VERIFY_MINUTES = 12
    assert make_window().verify_for == timedelta(minutes=12)


def test_failing_checks_fail_verification_and_open_exactly_one_incident(make_window, settings):
    window = make_window(backup_required=False)
    tick_at(START)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    tick_at(START + timedelta(minutes=30))
    tick_at(START + timedelta(minutes=31))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    assert window.verification["results"][0]["ok"] is False
    incident = Incident.objects.get()
    assert incident.severity == Incident.Severity.HIGH
    assert list(MaintenanceWindow.objects.filter(incidents=incident)) == [window]


def test_a_check_that_fails_late_in_the_period_fails_the_window_once(make_window, settings):
    window = make_window(backup_required=False, verify_for=timedelta(minutes=5))
    tick_at(START)
    tick_at(START + timedelta(minutes=30))
    tick_at(START + timedelta(minutes=31))
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    tick_at(START + timedelta(minutes=32))
    for minute in (33, 34, 35, 40):
        tick_at(START + timedelta(minutes=minute))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    assert window.verification_failed_at == START + timedelta(minutes=32)
    assert window.verification["runs"] == 3
    assert Incident.objects.count() == 1
    assert completion_notices() == []


def test_the_same_tick_twice_runs_the_checks_once(make_window):
    window = make_window(backup_required=False)
    maintenance_tick(now=START)
    maintenance_tick(now=START + timedelta(minutes=30))
    maintenance_tick(now=START + timedelta(minutes=31, seconds=10))
    before = MaintenanceWindow.objects.get(pk=window.pk)
    summary = maintenance_tick(now=START + timedelta(minutes=31, seconds=40))
    window.refresh_from_db()
    assert summary["verified"] == []
    assert window.verification == before.verification
    assert window.verification["runs"] == 2
    assert window.last_checked_at == START + timedelta(minutes=31, seconds=10)


def test_complete_early_starts_the_verification_period_now(make_window, agent):
    window = make_window(backup_required=False, verify_for=timedelta(minutes=5))
    tick_at(START)
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        moved = maintenance_transition(window_id=window.pk, actor=agent, to=Status.VERIFYING)
    assert moved.status == Status.VERIFYING
    assert moved.verifying_at == START + timedelta(minutes=5)
    assert moved.verify_until == START + timedelta(minutes=10)
    assert moved.verification["runs"] == 1
    tick_at(START + timedelta(minutes=10))
    window.refresh_from_db()
    assert window.status == Status.COMPLETED
    assert len(completion_notices()) == 1


def test_an_agent_may_accept_a_verifying_window_without_waiting(make_window, agent):
    window = make_window(backup_required=False, verify_for=timedelta(hours=2))
    tick_at(START)
    tick_at(START + timedelta(minutes=30))
    with time_machine.travel(START + timedelta(minutes=31), tick=False):
        moved = maintenance_transition(window_id=window.pk, actor=agent, to=Status.COMPLETED)
    assert moved.status == Status.COMPLETED
    assert moved.completed_at == START + timedelta(minutes=31)
    assert len(completion_notices()) == 1


def test_checks_run_again_after_a_failure_get_a_new_period(make_window, agent, settings):
    window = make_window(backup_required=False, verify_for=timedelta(minutes=3))
    tick_at(START)
    caches = settings.CACHES
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    tick_at(START + timedelta(minutes=30))
    settings.CACHES = caches
    with time_machine.travel(START + timedelta(minutes=50), tick=False):
        moved = maintenance_transition(window_id=window.pk, actor=agent, to=Status.VERIFYING)
    assert moved.status == Status.VERIFYING
    assert moved.verifying_at == START + timedelta(minutes=30)  # the maintenance ended then
    assert moved.verify_until == START + timedelta(minutes=53)
    assert moved.verification["runs"] == 1
    tick_at(START + timedelta(minutes=52))
    tick_at(START + timedelta(minutes=53))
    window.refresh_from_db()
    assert window.status == Status.COMPLETED
    assert window.verification["runs"] == 3
    assert Incident.objects.count() == 1  # the first failure's


def test_a_verifying_window_whose_checks_never_ran_is_checked_by_the_next_tick(make_window):
    window = make_window(backup_required=False, verify_for=timedelta(0))
    tick_at(START)
    # A crashed run moved it to verifying and died before its checks ran.
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        status=Status.VERIFYING, verifying_at=START + timedelta(minutes=30), verify_until=START + timedelta(minutes=30)
    )
    tick_at(START + timedelta(minutes=31))
    window.refresh_from_db()
    assert window.status == Status.COMPLETED


def test_one_broken_window_does_not_hold_up_the_others(make_window):
    broken = make_window(backup_required=False, title="Broken")
    MaintenanceWindow.objects.filter(pk=broken.pk).update(checks=[{"kind": "removed-kind"}])
    fine = make_window(
        backup_required=False,
        title="Fine",
        starts_at=START,
        ends_at=START + timedelta(minutes=31),
        verify_for=timedelta(0),
    )
    tick_at(START)
    summary = tick_at(START + timedelta(minutes=31))
    assert summary is not None
    assert summary["errors"] == [f"MW-{broken.pk}: KeyError: 'removed-kind'"]
    fine.refresh_from_db()
    assert fine.status == Status.COMPLETED


def test_a_recurring_series_gets_new_occurrences_as_time_goes_on(make_window):
    with time_machine.travel(START - timedelta(days=1), tick=False):
        window = make_window(recurrence="FREQ=WEEKLY;BYDAY=SU", backup_required=False)
    first = window.occurrences.count()
    summary = maintenance_tick(now=START + timedelta(weeks=4))
    assert first == 4  # the next 35 days
    assert summary["expanded"] == 5
    assert window.occurrences.count() == first + 5


@pytest.mark.django_db(transaction=True)
def test_the_window_starts_only_after_a_verified_pre_maintenance_backup(make_window):
    window = make_window()
    tick_at(START - timedelta(minutes=1))
    assert not Backup.objects.exists()
    tick_at(START)
    window.refresh_from_db()
    assert window.status == Status.IN_PROGRESS
    backup = window.backup
    assert backup is not None
    assert backup.trigger == Backup.Trigger.PRE_MAINTENANCE
    assert backup.is_verified
    assert backup.finished_at is not None
    assert backup.finished_at <= window.started_at
    tick_at(START + timedelta(minutes=1))
    assert Backup.objects.count() == 1
