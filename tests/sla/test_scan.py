"""The SLA scan Beat runs every minute: at-risk and breached marks, their events and metric, the API filter."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine

from itsm.models import Event, JobRun, Ticket
from itsm.services.jobs import job_run_once
from itsm.services.sla import sla_scan
from itsm.services.tickets import comment_create, ticket_transition, ticket_update
from itsm.tasks.sla import scan_sla
from tests.factories import make_ticket
from tests.sla.conftest import MONDAY, fresh, minutes, sla_events, state_changes

pytestmark = pytest.mark.django_db

T = MONDAY


def scan_at(moment: datetime, **options: Any) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return sla_scan(**options)


def high_ticket_at(requester: Any, moment: datetime, **fields: Any) -> Ticket:
    with time_machine.travel(moment, tick=False):
        return make_ticket(requester, priority="high", **fields)


# Marking


def test_scan_marks_a_high_ticket_at_risk_at_48_minutes_and_breached_after_60(requester: Any) -> None:
    ticket = high_ticket_at(requester, T)

    assert scan_at(T + minutes(47)) == {"at_risk": 0, "breached": 0}
    assert fresh(ticket).sla_status == Ticket.SlaStatus.OK

    assert scan_at(T + minutes(48)) == {"at_risk": 1, "breached": 0}
    assert fresh(ticket).sla_status == Ticket.SlaStatus.AT_RISK

    # Due at 60 minutes: a reply at that minute is still in time.
    assert scan_at(T + minutes(60)) == {"at_risk": 0, "breached": 0}
    assert fresh(ticket).sla_status == Ticket.SlaStatus.AT_RISK

    assert scan_at(T + minutes(61)) == {"at_risk": 0, "breached": 1}
    assert fresh(ticket).sla_status == Ticket.SlaStatus.BREACHED


def test_scan_writes_an_sla_event_with_the_old_and_new_state_for_each_change(requester: Any) -> None:
    ticket = high_ticket_at(requester, T)

    scan_at(T + minutes(48))
    scan_at(T + minutes(61))

    events = list(Event.objects.filter(ticket=ticket, kind=Event.Kind.SLA).order_by("created_at", "id"))
    assert [(e.field, e.old_value, e.new_value, e.actor_id, e.created_at) for e in events] == [
        ("sla_status", "ok", "at_risk", None, T + minutes(48)),
        ("sla_status", "at_risk", "breached", None, T + minutes(61)),
    ]


def test_scan_counts_each_change_in_the_state_changes_metric(requester: Any) -> None:
    at_risk_before = state_changes("at_risk", "high")
    breached_before = state_changes("breached", "high")
    high_ticket_at(requester, T)
    high_ticket_at(requester, T + minutes(1))

    scan_at(T + minutes(50))
    assert state_changes("at_risk", "high") == at_risk_before + 2
    assert state_changes("breached", "high") == breached_before

    scan_at(T + minutes(62))
    assert state_changes("at_risk", "high") == at_risk_before + 2
    assert state_changes("breached", "high") == breached_before + 2


def test_a_ticket_past_its_due_time_at_the_first_scan_goes_straight_to_breached(requester: Any) -> None:
    ticket = high_ticket_at(requester, T)

    assert scan_at(T + minutes(90)) == {"at_risk": 0, "breached": 1}
    assert sla_events(ticket) == [("ok", "breached")]


def test_scanning_twice_in_the_same_minute_marks_once(requester: Any) -> None:
    ticket = high_ticket_at(requester, T)
    before = state_changes("at_risk", "high")

    scan_at(T + minutes(48))
    assert scan_at(T + minutes(48)) == {"at_risk": 0, "breached": 0}

    assert sla_events(ticket) == [("ok", "at_risk")]
    assert state_changes("at_risk", "high") == before + 1


def test_scan_marks_a_resolution_breach_after_a_response_in_time(requester: Any, agent: Any) -> None:
    with time_machine.travel(T, tick=False) as clock:
        ticket = make_ticket(requester, priority="critical")
        clock.move_to(T + minutes(5))
        comment_create(ticket_id=ticket.pk, author=agent, body="Paging the database team.")

    # 80 % of the 240-minute resolution target is 192 minutes.
    assert scan_at(T + minutes(191)) == {"at_risk": 0, "breached": 0}
    assert scan_at(T + minutes(192)) == {"at_risk": 1, "breached": 0}
    assert scan_at(T + minutes(240)) == {"at_risk": 0, "breached": 0}
    assert scan_at(T + minutes(241)) == {"at_risk": 0, "breached": 1}
    assert fresh(ticket).sla_status == Ticket.SlaStatus.BREACHED


def test_an_in_time_response_takes_an_at_risk_ticket_back_to_ok(requester: Any, agent: Any) -> None:
    ticket = high_ticket_at(requester, T)
    scan_at(T + minutes(50))

    with time_machine.travel(T + minutes(55), tick=False):
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")

    assert fresh(ticket).sla_status == Ticket.SlaStatus.OK
    assert scan_at(T + minutes(61)) == {"at_risk": 0, "breached": 0}
    assert sla_events(ticket) == [("ok", "at_risk"), ("at_risk", "ok")]


# A breach is sticky


def test_a_breach_is_sticky_through_a_reply_a_lower_priority_and_the_resolution(requester: Any, agent: Any) -> None:
    ticket = high_ticket_at(requester, T)
    scan_at(T + minutes(61))

    with time_machine.travel(T + minutes(70), tick=False) as clock:
        comment_create(ticket_id=ticket.pk, author=agent, body="Sorry for the wait.")
        clock.move_to(T + minutes(75))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "low"})
        clock.move_to(T + minutes(80))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")

    assert scan_at(T + minutes(81)) == {"at_risk": 0, "breached": 0}
    assert fresh(ticket).sla_status == Ticket.SlaStatus.BREACHED
    assert sla_events(ticket) == [("ok", "breached")]


def test_a_breached_ticket_is_not_marked_again_by_later_scans(requester: Any) -> None:
    ticket = high_ticket_at(requester, T)
    before = state_changes("breached", "high")

    for minute in (61, 62, 120, 24 * 60 + 1):
        scan_at(T + minutes(minute))

    assert sla_events(ticket) == [("ok", "breached")]
    assert state_changes("breached", "high") == before + 1


# Paused and finished tickets


def test_a_paused_ticket_is_not_marked_however_long_it_waits(requester: Any, agent: Any) -> None:
    with time_machine.travel(T, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
        clock.move_to(T + minutes(10))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending")

    for minute in (48, 61, 24 * 60 + 1, 7 * 24 * 60):
        assert scan_at(T + minutes(minute)) == {"at_risk": 0, "breached": 0}

    assert fresh(ticket).sla_status == Ticket.SlaStatus.PAUSED
    assert sla_events(ticket) == [("ok", "paused")]


def test_a_paused_ticket_is_marked_again_from_where_its_clock_resumed(requester: Any, agent: Any) -> None:
    with time_machine.travel(T, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
        clock.move_to(T + minutes(10))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending")
        clock.move_to(T + minutes(100))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="in_progress")

    # 10 minutes ran before the pause: at risk 38 minutes and due 50 minutes after it ended.
    assert scan_at(T + minutes(137)) == {"at_risk": 0, "breached": 0}
    assert scan_at(T + minutes(138)) == {"at_risk": 1, "breached": 0}
    assert scan_at(T + minutes(150)) == {"at_risk": 0, "breached": 0}
    assert scan_at(T + minutes(151)) == {"at_risk": 0, "breached": 1}


def test_a_resolved_ticket_is_not_marked(requester: Any, agent: Any) -> None:
    ticket = high_ticket_at(requester, T)
    with time_machine.travel(T + minutes(30), tick=False):
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")

    assert scan_at(T + timedelta(days=10)) == {"at_risk": 0, "breached": 0}
    assert fresh(ticket).sla_status == Ticket.SlaStatus.MET


def test_a_breach_waiting_behind_tickets_already_at_risk_is_still_marked(requester: Any) -> None:
    overdue = high_ticket_at(requester, T)
    later = high_ticket_at(requester, T + minutes(30))
    scan_at(T + minutes(50))
    assert fresh(overdue).sla_status == Ticket.SlaStatus.AT_RISK

    # One ticket per scan: the newer ticket, at risk and not yet due, must not take the place of the breach.
    scan_at(T + minutes(80), batch_size=1)
    scan_at(T + minutes(81), batch_size=1)

    assert fresh(overdue).sla_status == Ticket.SlaStatus.BREACHED
    assert fresh(later).sla_status == Ticket.SlaStatus.AT_RISK


# The API filter


@pytest.fixture
def tickets_in_every_state(requester: Any, other_requester: Any, agent: Any) -> dict[str, Ticket]:
    """One ticket per SLA state at T + 55 minutes, after the scan of that minute."""
    breached = high_ticket_at(requester, T - minutes(10))
    at_risk = high_ticket_at(other_requester, T)
    ok = high_ticket_at(requester, T + minutes(30))
    with time_machine.travel(T, tick=False) as clock:
        paused = make_ticket(requester, priority="critical")
        ticket_transition(ticket_id=paused.pk, actor=agent, to="open")
        ticket_transition(ticket_id=paused.pk, actor=agent, to="pending")
        clock.move_to(T + minutes(20))
        met = make_ticket(requester, priority="critical")
        ticket_transition(ticket_id=met.pk, actor=agent, to="resolved")
    scan_at(T + minutes(55))
    tickets = {"breached": breached, "at_risk": at_risk, "ok": ok, "paused": paused, "met": met}
    assert {state: fresh(ticket).sla_status for state, ticket in tickets.items()} == {state: state for state in tickets}
    return tickets


def result_ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {ticket["id"] for ticket in response.json()["results"]}


def test_an_agent_filters_the_breached_tickets(
    as_agent: Any, tickets_in_every_state: dict[str, Ticket], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(10):
        response = as_agent.get("/api/v1/tickets/?sla=breached")

    assert result_ids(response) == {tickets_in_every_state["breached"].pk}
    assert [ticket["sla_status"] for ticket in response.json()["results"]] == ["breached"]


def test_an_agent_filters_the_tickets_at_risk(as_agent: Any, tickets_in_every_state: dict[str, Ticket]) -> None:
    response = as_agent.get("/api/v1/tickets/?sla=at_risk")

    assert result_ids(response) == {tickets_in_every_state["at_risk"].pk}


def test_an_agent_filters_tickets_at_risk_or_breached_together(
    as_agent: Any, tickets_in_every_state: dict[str, Ticket]
) -> None:
    response = as_agent.get("/api/v1/tickets/?sla=at_risk&sla=breached")

    assert result_ids(response) == {tickets_in_every_state["at_risk"].pk, tickets_in_every_state["breached"].pk}


def test_a_requester_filtering_breached_tickets_sees_only_their_own(
    as_requester: Any, as_other_requester: Any, tickets_in_every_state: dict[str, Ticket]
) -> None:
    assert result_ids(as_requester.get("/api/v1/tickets/?sla=breached")) == {tickets_in_every_state["breached"].pk}
    assert result_ids(as_other_requester.get("/api/v1/tickets/?sla=breached")) == set()
    assert result_ids(as_other_requester.get("/api/v1/tickets/?sla=at_risk")) == {tickets_in_every_state["at_risk"].pk}


def test_an_unknown_sla_filter_value_is_a_400(as_agent: Any) -> None:
    response = as_agent.get("/api/v1/tickets/?sla=late")

    assert response.status_code == 400
    assert "sla" in response.json()


# The Celery task and its once-per-minute run


def test_the_scan_task_runs_once_per_minute_and_records_the_run(requester: Any) -> None:
    ticket = high_ticket_at(requester, T)

    with time_machine.travel(T + minutes(48) + timedelta(seconds=5), tick=False) as clock:
        first = scan_sla()
        clock.move_to(T + minutes(48) + timedelta(seconds=50))
        second = scan_sla()

    assert first == {"at_risk": 1, "breached": 0}
    assert second is None
    assert fresh(ticket).sla_status == Ticket.SlaStatus.AT_RISK
    run = JobRun.objects.get(job="scan_sla")
    assert run.slot == T + minutes(48)
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.started_at == T + minutes(48) + timedelta(seconds=5)
    assert run.finished_at is not None
    assert run.detail == {"at_risk": 1, "breached": 0}


def test_the_scan_task_runs_again_in_the_next_minute(requester: Any) -> None:
    ticket = high_ticket_at(requester, T)

    with time_machine.travel(T + minutes(59) + timedelta(seconds=59), tick=False) as clock:
        assert scan_sla() == {"at_risk": 1, "breached": 0}
        clock.move_to(T + minutes(61))
        assert scan_sla() == {"at_risk": 0, "breached": 1}

    assert fresh(ticket).sla_status == Ticket.SlaStatus.BREACHED
    assert list(JobRun.objects.filter(job="scan_sla").order_by("slot").values_list("slot", flat=True)) == [
        T + minutes(59),
        T + minutes(61),
    ]


def test_a_failed_job_is_recorded_and_raises(db: Any) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("database went away")

    with time_machine.travel(T, tick=False), pytest.raises(RuntimeError, match="went away"):
        job_run_once(job="broken", period=timedelta(minutes=1), work=broken)

    run = JobRun.objects.get(job="broken")
    assert run.status == JobRun.Status.FAILED
    assert run.detail == {"error": "RuntimeError: database went away"}
    assert run.finished_at == T


def test_two_jobs_share_a_minute_without_skipping_each_other(db: Any) -> None:
    with time_machine.travel(T, tick=False):
        first = job_run_once(job="one", period=timedelta(minutes=1), work=lambda: {"done": 1})
        second = job_run_once(job="two", period=timedelta(minutes=1), work=lambda: {"done": 2})

    assert first is not None
    assert second is not None
    assert (first.detail, second.detail) == ({"done": 1}, {"done": 2})
