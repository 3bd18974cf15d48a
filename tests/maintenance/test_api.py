"""/api/v1/maintenance-windows/: agents and admins manage windows, everyone signed in reads them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from itsm.models import MaintenanceWindow
from tests.etags import if_match
from tests.maintenance.conftest import START

URL = "/api/v1/maintenance-windows/"


def body(service: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "title": "PostgreSQL minor upgrade",
        "description": "Apply 16.4.",
        "services": [service.pk],
        "starts_at": START.isoformat(),
        "ends_at": (START + timedelta(minutes=30)).isoformat(),
        "notify_before_minutes": 120,
        "checks": [{"kind": "api_health"}],
    }
    data.update(overrides)
    return data


def test_an_agent_schedules_a_window_with_the_issues_defaults(as_agent, agent, database_service):
    response = as_agent.post(URL, body(database_service), format="json")
    assert response.status_code == 201, response.data
    window = response.data
    assert window["status"] == "scheduled"
    assert window["backup_required"] is True
    assert window["silence_alerts"] is True
    assert window["notify_before_minutes"] == 120
    assert window["services"] == [database_service.pk]
    assert window["owner"] == agent.pk
    assert MaintenanceWindow.objects.get(pk=window["id"]).notify_before == timedelta(hours=2)


def test_a_requester_reads_public_windows_but_cannot_schedule_one(as_requester, make_window, database_service):
    window = make_window(public=True, public_title="Database upgrade")
    private = make_window(starts_at=START + timedelta(days=1), ends_at=START + timedelta(days=1, hours=1))
    assert [shown["id"] for shown in as_requester.get(URL).data["results"]] == [window.pk]
    assert as_requester.get(f"{URL}{private.pk}/").status_code == 404
    assert as_requester.get(f"{URL}{window.pk}/").status_code == 200
    assert as_requester.post(URL, body(database_service), format="json").status_code == 403
    response = as_requester.post(f"{URL}{window.pk}/transition/", {"to": "cancelled"}, format="json")
    assert response.status_code == 403


def test_an_anonymous_visitor_reads_nothing(anonymous, make_window):
    make_window()
    assert anonymous.get(URL).status_code == 401


def test_an_end_before_the_start_is_a_400_naming_ends_at(as_agent, database_service):
    response = as_agent.post(URL, body(database_service, ends_at=START.isoformat()), format="json")
    assert response.status_code == 400
    assert list(response.data) == ["ends_at"]


def test_a_start_in_the_past_is_a_400_naming_starts_at(as_agent, database_service):
    past = timezone.now() - timedelta(hours=1)
    data = body(database_service, starts_at=past.isoformat(), ends_at=(past + timedelta(hours=2)).isoformat())
    response = as_agent.post(URL, data, format="json")
    assert response.status_code == 400
    assert list(response.data) == ["starts_at"]


def test_unknown_checks_and_bad_rules_are_400s_naming_their_field(as_agent, database_service):
    response = as_agent.post(URL, body(database_service, checks=[{"kind": "vibes"}]), format="json")
    assert response.status_code == 400
    assert "checks" in response.data
    response = as_agent.post(URL, body(database_service, checks=[{"kind": "promql"}]), format="json")
    assert response.status_code == 400
    assert "expression" in str(response.data["checks"])
    response = as_agent.post(URL, body(database_service, recurrence="FREQ=SOMETIMES"), format="json")
    assert response.status_code == 400
    assert "recurrence" in response.data
    response = as_agent.post(URL, body(database_service, recurrence="FREQ=MINUTELY"), format="json")
    assert response.status_code == 400
    assert "overlap" in str(response.data["recurrence"])


def test_checks_are_stored_with_their_known_keys_only_and_nul_is_a_400(as_agent, database_service):
    # Found by schemathesis: an extra key holding "\u0000" reached PostgreSQL's jsonb, which refused it (a 500).
    extra = {"kind": "api_health", "t\u0000": [{}], "note": "x\u0000y"}
    promql = {"kind": "promql", "expr": "up == 1", "labels": {"a": 1}}
    response = as_agent.post(URL, body(database_service, checks=[extra, promql]), format="json")
    assert response.status_code == 201, response.data
    assert response.data["checks"] == [{"kind": "api_health"}, {"kind": "promql", "expr": "up == 1"}]
    patched = as_agent.patch(
        f"{URL}{response.data['id']}/",
        {"checks": [extra]},
        format="json",
        **if_match(MaintenanceWindow, response.data["id"]),
    )
    assert patched.status_code == 200, patched.data
    assert MaintenanceWindow.objects.get(pk=response.data["id"]).checks == [{"kind": "api_health"}]
    nul = as_agent.post(URL, body(database_service, checks=[{"kind": "promql", "expr": "up\u0000"}]), format="json")
    assert nul.status_code == 400
    assert list(nul.data) == ["checks"]


def test_a_weekly_rule_is_expanded_into_occurrences_of_the_same_length(as_agent_at_any_time, database_service):
    as_agent = as_agent_at_any_time
    with time_machine.travel(START - timedelta(days=1), tick=False):
        response = as_agent.post(URL, body(database_service, recurrence="FREQ=WEEKLY;BYDAY=SU"), format="json")
    assert response.status_code == 201, response.data
    occurrences = MaintenanceWindow.objects.filter(series_id=response.data["id"]).order_by("starts_at")
    starts = [window.starts_at for window in occurrences]
    assert starts[:3] == [START + timedelta(weeks=n) for n in (1, 2, 3)]
    assert all(w.ends_at - w.starts_at == timedelta(minutes=30) for w in occurrences)
    assert all(list(w.services.all()) == [database_service] for w in occurrences)
    listed = as_agent.get(URL, {"series": response.data["id"]}).data
    assert len(listed["results"]) == len(starts)


def test_cancelling_the_first_occurrence_cancels_the_series(as_agent_at_any_time, database_service):
    as_agent = as_agent_at_any_time
    with time_machine.travel(START - timedelta(days=1), tick=False):
        created = as_agent.post(URL, body(database_service, recurrence="FREQ=WEEKLY;COUNT=3"), format="json").data
    response = as_agent.post(
        f"{URL}{created['id']}/transition/",
        {"to": "cancelled"},
        format="json",
        **if_match(MaintenanceWindow, created["id"]),
    )
    assert response.status_code == 200
    assert response.data["status"] == "cancelled"
    assert response.data["cancelled_at"]
    assert set(MaintenanceWindow.objects.values_list("status", flat=True)) == {"cancelled"}
    assert MaintenanceWindow.objects.count() == 3


def test_a_move_outside_the_table_is_a_409_naming_the_allowed_states(as_agent, make_window):
    window = make_window()
    response = as_agent.post(f"{URL}{window.pk}/transition/", {"to": "completed"}, format="json", **if_match(window))
    assert response.status_code == 409
    assert response.data["allowed"] == ["blocked", "cancelled", "in_progress"]
    assert "in_progress" in response.data["detail"]


def test_asking_for_the_current_state_changes_nothing(as_agent, make_window):
    window = make_window()
    response = as_agent.post(f"{URL}{window.pk}/transition/", {"to": "scheduled"}, format="json", **if_match(window))
    assert response.status_code == 200
    assert response.data["status"] == "scheduled"


def test_a_scheduled_window_can_be_edited_and_a_new_start_is_announced_again(as_agent, make_window):
    window = make_window()
    MaintenanceWindow.objects.filter(pk=window.pk).update(announced_at=START - timedelta(hours=1))
    new_start = START + timedelta(days=1)
    response = as_agent.patch(
        f"{URL}{window.pk}/",
        {"starts_at": new_start.isoformat(), "ends_at": (new_start + timedelta(hours=1)).isoformat()},
        format="json",
        **if_match(window),
    )
    assert response.status_code == 200, response.data
    assert response.data["announced_at"] is None
    assert response.data["notify_before_minutes"] == 60


def test_a_window_that_started_can_no_longer_be_edited(as_agent, make_window):
    window = make_window()
    MaintenanceWindow.objects.filter(pk=window.pk).update(status="in_progress")
    response = as_agent.patch(f"{URL}{window.pk}/", {"title": "Something else"}, format="json", **if_match(window))
    assert response.status_code == 400
    assert "status" in response.data


def test_only_admins_delete_windows(as_agent, as_admin, make_window):
    window = make_window()
    assert as_agent.delete(f"{URL}{window.pk}/").status_code == 403
    assert as_admin.delete(f"{URL}{window.pk}/").status_code == 204


@pytest.mark.parametrize("persona", ["as_requester", "as_agent"])
def test_the_list_does_not_grow_its_queries_with_the_windows(
    request, persona, make_window, django_assert_max_num_queries
):
    for day in range(5):
        make_window(
            starts_at=START + timedelta(days=day),
            ends_at=START + timedelta(days=day, hours=1),
            public=True,
            public_title=f"Upgrade {day}",
        )
    client = request.getfixturevalue(persona)
    with django_assert_max_num_queries(8):
        response = client.get(URL)
    assert len(response.data["results"]) == 5


@pytest.mark.parametrize("status", ["draft", ""])
def test_an_unknown_target_state_is_a_400(as_agent, make_window, status):
    window = make_window()
    response = as_agent.post(f"{URL}{window.pk}/transition/", {"to": status}, format="json", **if_match(window))
    assert response.status_code == 400
    assert "to" in response.data


def test_the_verification_period_defaults_to_the_setting_and_can_be_chosen(as_agent, database_service, settings):
    settings.ITSM_MAINTENANCE_VERIFY_MINUTES = 7
    default = as_agent.post(URL, body(database_service), format="json")
    assert default.status_code == 201, default.data
    assert default.data["verify_for_minutes"] == 7
    assert default.data["verify_until"] is None
    chosen = as_agent.post(URL, body(database_service, verify_for_minutes=0), format="json")
    assert chosen.data["verify_for_minutes"] == 0
    edited = as_agent.patch(
        f"{URL}{chosen.data['id']}/",
        {"verify_for_minutes": 20},
        format="json",
        **if_match(MaintenanceWindow, chosen.data["id"]),
    )
    assert edited.status_code == 200, edited.data
    assert edited.data["verify_for_minutes"] == 20
    untouched = as_agent.patch(
        f"{URL}{chosen.data['id']}/",
        {"title": "Renamed"},
        format="json",
        **if_match(MaintenanceWindow, chosen.data["id"]),
    )
    assert untouched.data["verify_for_minutes"] == 20
    assert MaintenanceWindow.objects.get(pk=chosen.data["id"]).verify_for == timedelta(minutes=20)


@pytest.mark.parametrize("minutes", [-1, 24 * 60 + 1, "soon"])
def test_a_verification_period_out_of_range_is_a_400_naming_it(as_agent, database_service, minutes):
    response = as_agent.post(URL, body(database_service, verify_for_minutes=minutes), format="json")
    assert response.status_code == 400
    assert "verify_for_minutes" in response.json()
    assert not MaintenanceWindow.objects.exists()
