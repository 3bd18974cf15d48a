"""Every status change of a window goes through its one transition function and leaves an Event with its actor:
cancelling one, cancelling a series, a blocked gate, failed verification; the history is read over the API (agents
and admins) and on the admin's change page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import time_machine

from itsm.models import Event, MaintenanceWindow
from itsm.services.maintenance_lifecycle import maintenance_tick, maintenance_transition
from tests.etags import if_match
from tests.maintenance.conftest import START

Status = MaintenanceWindow.Status


def moves(window: MaintenanceWindow) -> list[tuple[str, str, str | None, str]]:
    """(old, new, actor, note) of each status change, oldest first."""
    events = Event.objects.filter(window=window, kind=Event.Kind.TRANSITION).order_by("created_at", "id")
    return [(e.old_value, e.new_value, e.actor.username if e.actor else None, e.note) for e in events]


def test_cancelling_a_window_records_who_cancelled_it(make_window, agent, as_agent):
    window = make_window()
    response = as_agent.post(
        f"/api/v1/maintenance-windows/{window.pk}/transition/", {"to": "cancelled"}, **if_match(window)
    )
    assert response.status_code == 200, response.content
    assert moves(window) == [("scheduled", "cancelled", "alice", "")]
    created = Event.objects.get(window=window, kind=Event.Kind.CREATED)
    assert created.actor == agent


def test_cancelling_a_series_moves_each_later_occurrence_through_the_transition(make_window, admin):
    series = make_window(recurrence="FREQ=WEEKLY;BYDAY=SU")
    with time_machine.travel(START - timedelta(days=1), tick=False):
        maintenance_tick()
    occurrences = list(series.occurrences.all())
    assert len(occurrences) >= 4
    maintenance_transition(window_id=series.pk, actor=admin, to=Status.CANCELLED)
    assert moves(series) == [("scheduled", "cancelled", "adam", "")]
    for occurrence in occurrences:
        occurrence.refresh_from_db()
        assert occurrence.status == Status.CANCELLED
        assert occurrence.cancelled_at is not None
        assert moves(occurrence) == [("scheduled", "cancelled", "adam", f"The series MW-{series.pk} was cancelled.")]


def test_a_blocked_gate_is_recorded_with_its_reason_and_the_scheduler_as_actor(make_window, broken_backups):
    window = make_window()
    maintenance_tick(now=START)
    window.refresh_from_db()
    assert window.status == Status.BLOCKED
    [(old, new, actor, note)] = moves(window)
    assert (old, new, actor) == ("scheduled", "blocked", None)
    assert note == window.blocked_reason
    assert "pre-maintenance backup" in note


def test_starting_now_by_hand_through_a_failing_gate_records_who_asked(make_window, agent, broken_backups):
    window = make_window()
    maintenance_transition(window_id=window.pk, actor=agent, to=Status.IN_PROGRESS, now=START - timedelta(hours=1))
    assert [move[:3] for move in moves(window)] == [("scheduled", "blocked", "alice")]


def test_failed_verification_is_recorded_with_the_checks_that_failed(make_window, settings):
    window = make_window(backup_required=False)
    maintenance_tick(now=START)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    maintenance_tick(now=START + timedelta(minutes=30))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    recorded = moves(window)
    assert [move[:3] for move in recorded] == [
        ("scheduled", "in_progress", None),
        ("in_progress", "verifying", None),
        ("verifying", "verification_failed", None),
    ]
    assert recorded[-1][3].startswith("Checks that failed after the maintenance: api_health:")


def test_edits_are_recorded_field_by_field(make_window, agent, as_agent):
    window = make_window()
    response = as_agent.patch(
        f"/api/v1/maintenance-windows/{window.pk}/",
        {"title": "Upgrade PostgreSQL to 17.3"},
        format="json",
        **if_match(window),
    )
    assert response.status_code == 200, response.content
    change = Event.objects.get(window=window, kind=Event.Kind.CHANGED)
    assert (change.field, change.old_value, change.new_value) == (
        "title",
        "PostgreSQL minor upgrade",
        "Upgrade PostgreSQL to 17.3",
    )
    assert change.actor == agent


def test_agents_read_the_history_over_the_api_and_requesters_may_not(
    make_window, as_agent, as_requester, django_assert_max_num_queries: Any
):
    window = make_window()
    as_agent.post(f"/api/v1/maintenance-windows/{window.pk}/transition/", {"to": "cancelled"}, **if_match(window))
    with django_assert_max_num_queries(6):
        response = as_agent.get(f"/api/v1/maintenance-windows/{window.pk}/events/")
    assert response.status_code == 200
    rows = [(row["kind"], row["old_value"], row["new_value"]) for row in response.json()["results"]]
    assert rows == [("created", "", "scheduled"), ("transition", "scheduled", "cancelled")]
    refused = as_requester.get(f"/api/v1/maintenance-windows/{window.pk}/events/")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only agents and admins can see this."


def test_the_admin_change_page_shows_the_history(make_window, agent, client):
    window = make_window()
    maintenance_transition(window_id=window.pk, actor=agent, to=Status.CANCELLED)
    client.force_login(agent)
    page = client.get(f"/admin/itsm/maintenancewindow/{window.pk}/change/").content.decode()
    assert "<th>who</th>" in page
    assert "scheduled → cancelled" in page
