"""Due times of real tickets, through the services, with the clock frozen and moved by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from itsm.exceptions import InvalidInput
from itsm.models import BusinessCalendar, Event, Holiday, SlaPolicy, Ticket
from itsm.services.sla import sla_policy_default, sla_recompute_open_tickets
from itsm.services.tickets import comment_create, ticket_transition, ticket_update
from tests.factories import make_ticket
from tests.sla.conftest import MONDAY, fresh, minutes, sla_events, state_changes

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# The default policy on 24x7


def test_the_default_policy_has_the_manuals_targets_on_a_24x7_calendar() -> None:
    policy = sla_policy_default()

    assert policy.is_default
    assert policy.calendar.kind == BusinessCalendar.Kind.ALWAYS
    assert policy.targets_for("critical") == (15, 4 * 60)
    assert policy.targets_for("high") == (60, 24 * 60)
    assert policy.targets_for("medium") == (4 * 60, 3 * 24 * 60)
    assert policy.targets_for("low") == (24 * 60, 5 * 24 * 60)
    assert sla_policy_default().pk == policy.pk


@pytest.mark.parametrize(
    ("priority", "response", "resolution"),
    [
        ("critical", minutes(15), timedelta(hours=4)),
        ("high", timedelta(hours=1), timedelta(days=1)),
        ("medium", timedelta(hours=4), timedelta(days=3)),
        ("low", timedelta(days=1), timedelta(days=5)),
    ],
)
def test_a_new_ticket_gets_the_default_targets_of_its_priority_around_the_clock(
    requester: Any, priority: str, response: timedelta, resolution: timedelta
) -> None:
    with time_machine.travel(MONDAY, tick=False):
        ticket = fresh(make_ticket(requester, priority=priority))

    assert ticket.created_at == MONDAY
    assert ticket.response_due_at == MONDAY + response
    assert ticket.resolution_due_at == MONDAY + resolution
    assert ticket.sla_at_risk_at == MONDAY + response * 0.8
    assert ticket.sla_status == Ticket.SlaStatus.OK


def test_a_ticket_created_on_saturday_night_is_due_an_hour_later_around_the_clock(requester: Any) -> None:
    saturday_night = datetime(2024, 6, 8, 23, 30, tzinfo=UTC)
    with time_machine.travel(saturday_night, tick=False):
        ticket = fresh(make_ticket(requester, priority="high"))

    assert ticket.response_due_at == datetime(2024, 6, 9, 0, 30, tzinfo=UTC)


# Business hours: Europe/Berlin, Monday to Friday 09:00-17:00


@pytest.mark.usefixtures("office_hours")
def test_high_ticket_created_friday_afternoon_is_due_monday_morning(requester: Any) -> None:
    with time_machine.travel(berlin(2024, 6, 7, 16, 30), tick=False):
        ticket = fresh(make_ticket(requester, priority="high"))

    # 60 working minutes: 30 on Friday until 17:00, then 30 on Monday from 09:00.
    assert ticket.response_due_at == berlin(2024, 6, 10, 9, 30)
    # 1440 working minutes: 30 on Friday, 480 on Monday, 480 on Tuesday, 450 on Wednesday.
    assert ticket.resolution_due_at == berlin(2024, 6, 12, 16, 30)
    # 80 % of the response target, 48 minutes: 30 on Friday, 18 on Monday.
    assert ticket.sla_at_risk_at == berlin(2024, 6, 10, 9, 18)


@pytest.mark.usefixtures("office_hours")
def test_high_ticket_created_an_hour_before_closing_on_friday_is_due_at_closing_time(requester: Any) -> None:
    with time_machine.travel(berlin(2024, 6, 7, 16, 0), tick=False):
        ticket = fresh(make_ticket(requester, priority="high"))

    assert ticket.response_due_at == berlin(2024, 6, 7, 17, 0)
    assert ticket.sla_at_risk_at == berlin(2024, 6, 7, 16, 48)
    # 60 on Friday, 480 on Monday and Tuesday, 420 on Wednesday.
    assert ticket.resolution_due_at == berlin(2024, 6, 12, 16, 0)


@pytest.mark.usefixtures("office_hours")
def test_a_ticket_created_at_the_weekend_starts_its_clock_on_monday_morning(requester: Any) -> None:
    with time_machine.travel(berlin(2024, 6, 8, 11, 0), tick=False):
        ticket = fresh(make_ticket(requester, priority="critical"))

    assert ticket.response_due_at == berlin(2024, 6, 10, 9, 15)
    assert ticket.resolution_due_at == berlin(2024, 6, 10, 13, 0)
    assert ticket.sla_at_risk_at == berlin(2024, 6, 10, 9, 12)


@pytest.mark.usefixtures("office_hours")
def test_a_ticket_created_across_the_spring_dst_weekend_is_due_in_local_office_hours(requester: Any) -> None:
    # Friday 29 March 2024 16:30 CET; Monday 1 April opens at 09:00 CEST, an hour less after UTC.
    with time_machine.travel(berlin(2024, 3, 29, 16, 30), tick=False):
        ticket = fresh(make_ticket(requester, priority="high"))

    assert ticket.response_due_at == berlin(2024, 4, 1, 9, 30)
    assert ticket.response_due_at == datetime(2024, 4, 1, 7, 30, tzinfo=UTC)


def test_a_holiday_of_the_calendar_is_skipped(requester: Any, office_hours: SlaPolicy) -> None:
    Holiday.objects.create(calendar=office_hours.calendar, date=date(2024, 6, 10), name="Company day")

    with time_machine.travel(berlin(2024, 6, 7, 16, 30), tick=False):
        ticket = fresh(make_ticket(requester, priority="high"))

    assert ticket.response_due_at == berlin(2024, 6, 11, 9, 30)


@pytest.mark.usefixtures("office_hours")
def test_a_pending_pause_moves_the_resolution_due_time_by_exactly_the_business_time_paused(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(berlin(2024, 6, 3, 10, 0), tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        # 1440 working minutes from Monday 10:00: 420 on Monday, 480 on Tuesday and Wednesday, 60 on Thursday.
        assert fresh(ticket).resolution_due_at == berlin(2024, 6, 6, 10, 0)

        clock.move_to(berlin(2024, 6, 3, 10, 5))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
        comment_create(ticket_id=ticket.pk, author=agent, body="Looking into it.")

        clock.move_to(berlin(2024, 6, 3, 15, 0))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending", note="Which printer?")
        paused = fresh(ticket)
        assert paused.sla_status == Ticket.SlaStatus.PAUSED
        assert paused.resolution_due_at is None
        assert paused.sla_at_risk_at is None
        assert paused.response_due_at == berlin(2024, 6, 3, 11, 0)

        clock.move_to(berlin(2024, 6, 4, 11, 0))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="in_progress")
        resumed = fresh(ticket)

    # Paused from Monday 15:00 to Tuesday 11:00: 120 working minutes on each day.
    assert resumed.resolution_due_at == berlin(2024, 6, 6, 14, 0)
    assert resumed.resolution_due_at - berlin(2024, 6, 6, 10, 0) == timedelta(minutes=240)
    assert resumed.response_due_at == berlin(2024, 6, 3, 11, 0)
    assert resumed.sla_status == Ticket.SlaStatus.OK
    assert sla_events(ticket) == [("ok", "paused"), ("paused", "ok")]


@pytest.mark.usefixtures("office_hours")
def test_due_times_across_a_weekend_and_a_pending_pause_on_business_hours_to_the_minute(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(berlin(2024, 6, 7, 15, 0), tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        # Unpaused, 1440 working minutes from Friday 15:00: 120 on Friday, 480 on Monday and Tuesday, 360 on Wednesday.
        assert fresh(ticket).resolution_due_at == berlin(2024, 6, 12, 15, 0)

        clock.move_to(berlin(2024, 6, 7, 15, 10))
        comment_create(ticket_id=ticket.pk, author=agent, body="Which floor is the printer on?")
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
        clock.move_to(berlin(2024, 6, 7, 16, 0))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending")
        clock.move_to(berlin(2024, 6, 10, 10, 30))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="in_progress")
        resumed = fresh(ticket)

    # 60 minutes ran on Friday. The pause (Friday 16:00 to Monday 10:30) covered 60 + 90 working minutes. The other
    # 1380 run from Monday 10:30: 390 on Monday, 480 on Tuesday and Wednesday, 30 on Thursday.
    assert resumed.resolution_due_at == berlin(2024, 6, 13, 9, 30)
    # 80 % is 1152 minutes: 60 on Friday, 390 on Monday, 480 on Tuesday, 222 on Wednesday.
    assert resumed.sla_at_risk_at == berlin(2024, 6, 12, 12, 42)
    assert resumed.response_due_at == berlin(2024, 6, 7, 16, 0)
    assert resumed.first_response_at == berlin(2024, 6, 7, 15, 10)
    assert resumed.sla_status == Ticket.SlaStatus.OK


@pytest.mark.usefixtures("office_hours")
def test_a_pending_pause_before_the_first_response_stops_the_response_clock_too(requester: Any, agent: Any) -> None:
    with time_machine.travel(berlin(2024, 6, 3, 16, 40), tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
        clock.move_to(berlin(2024, 6, 3, 16, 50))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending")
        assert fresh(ticket).response_due_at is None

        clock.move_to(berlin(2024, 6, 5, 14, 0))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="in_progress")
        resumed = fresh(ticket)

    # 10 working minutes ran on Monday; the other 50 from Wednesday 14:00.
    assert resumed.response_due_at == berlin(2024, 6, 5, 14, 50)
    assert resumed.sla_at_risk_at == berlin(2024, 6, 5, 14, 38)


# The first response


def test_an_agents_public_comment_stops_the_response_clock(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(10))
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
        answered = fresh(ticket)

    assert answered.first_response_at == MONDAY + minutes(10)
    assert answered.response_due_at == MONDAY + minutes(60)
    # Only the resolution target can now be at risk: 80 % of 1440 minutes.
    assert answered.sla_at_risk_at == MONDAY + minutes(1152)
    assert Event.objects.filter(ticket=ticket, kind=Event.Kind.CHANGED, field="first_response_at").count() == 1


def test_the_requesters_own_comment_is_not_a_first_response(requester: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(10))
        comment_create(ticket_id=ticket.pk, author=requester, body="Any news?")
        waiting = fresh(ticket)

    assert waiting.first_response_at is None
    assert waiting.sla_at_risk_at == MONDAY + minutes(48)


def test_an_internal_note_is_not_a_first_response(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(10))
        comment_create(ticket_id=ticket.pk, author=agent, body="Probably the toner.", internal=True)
        waiting = fresh(ticket)

    assert waiting.first_response_at is None
    assert waiting.sla_at_risk_at == MONDAY + minutes(48)


def test_only_the_first_public_agent_comment_counts_as_the_first_response(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(10))
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
        clock.move_to(MONDAY + minutes(30))
        comment_create(ticket_id=ticket.pk, author=agent, body="Still on it.")

    assert fresh(ticket).first_response_at == MONDAY + minutes(10)


def test_a_first_response_after_the_due_time_breaches_the_ticket_at_once(requester: Any, agent: Any) -> None:
    before = state_changes("breached", "critical")
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="critical")
        clock.move_to(MONDAY + minutes(16))
        comment_create(ticket_id=ticket.pk, author=agent, body="Sorry for the wait.")
        late = fresh(ticket)

    assert late.sla_status == Ticket.SlaStatus.BREACHED
    assert sla_events(ticket) == [("ok", "breached")]
    assert state_changes("breached", "critical") == before + 1


def test_a_first_response_exactly_at_the_due_time_is_in_time(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="critical")
        clock.move_to(MONDAY + minutes(15))
        comment_create(ticket_id=ticket.pk, author=agent, body="Here.")
        answered = fresh(ticket)

    assert answered.sla_status == Ticket.SlaStatus.OK


# Priority changes


def test_a_priority_change_recomputes_the_due_times_from_the_creation(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="medium")
        clock.move_to(MONDAY + minutes(5))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "high"})
        raised = fresh(ticket)

    assert raised.response_due_at == MONDAY + minutes(60)
    assert raised.resolution_due_at == MONDAY + timedelta(days=1)
    assert raised.sla_at_risk_at == MONDAY + minutes(48)
    assert raised.sla_status == Ticket.SlaStatus.OK
    change = Event.objects.get(ticket=ticket, kind=Event.Kind.CHANGED, field="priority")
    assert (change.old_value, change.new_value, change.actor_id) == ("medium", "high", agent.pk)
    assert change.created_at == MONDAY + minutes(5)


def test_a_priority_change_on_a_business_hours_calendar_recomputes_in_working_time(
    requester: Any, agent: Any, office_hours: SlaPolicy
) -> None:
    with time_machine.travel(berlin(2024, 6, 7, 16, 30), tick=False) as clock:
        ticket = make_ticket(requester, priority="low")
        clock.move_to(berlin(2024, 6, 7, 16, 40))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "critical"})
        raised = fresh(ticket)

    assert raised.response_due_at == berlin(2024, 6, 7, 16, 45)
    # 240 working minutes: 30 on Friday, 210 on Monday.
    assert raised.resolution_due_at == berlin(2024, 6, 10, 12, 30)
    assert raised.sla_at_risk_at == berlin(2024, 6, 7, 16, 42)


def test_raising_the_priority_past_its_new_response_target_breaches_at_once_with_an_event(
    requester: Any, agent: Any
) -> None:
    before = state_changes("breached", "critical")
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="medium")
        clock.move_to(MONDAY + minutes(20))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "critical"})
        raised = fresh(ticket)

    assert raised.response_due_at == MONDAY + minutes(15)
    assert raised.sla_status == Ticket.SlaStatus.BREACHED
    assert sla_events(ticket) == [("ok", "breached")]
    assert state_changes("breached", "critical") == before + 1


def test_lowering_the_priority_of_a_breached_ticket_keeps_it_breached(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="medium")
        clock.move_to(MONDAY + minutes(20))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "critical"})
        clock.move_to(MONDAY + minutes(25))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "low"})
        lowered = fresh(ticket)

    assert lowered.response_due_at == MONDAY + timedelta(days=1)
    assert lowered.sla_status == Ticket.SlaStatus.BREACHED
    assert sla_events(ticket) == [("ok", "breached")]


def test_a_requester_cannot_change_the_priority(requester: Any) -> None:
    with time_machine.travel(MONDAY, tick=False):
        ticket = make_ticket(requester, priority="low")
        with pytest.raises(InvalidInput):
            ticket_update(ticket_id=ticket.pk, actor=requester, expected_version=None, changes={"priority": "critical"})

    assert fresh(ticket).response_due_at == MONDAY + timedelta(days=1)


def test_editing_the_title_does_not_move_the_due_times(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(30))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"title": "Printer jams"})

    assert fresh(ticket).response_due_at == MONDAY + minutes(60)


# Resolution, reopening and closing


def test_a_ticket_resolved_in_time_has_met_its_sla(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(10))
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
        clock.move_to(MONDAY + timedelta(hours=2))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        resolved = fresh(ticket)

    assert resolved.sla_status == Ticket.SlaStatus.MET
    assert resolved.resolution_due_at == MONDAY + timedelta(days=1)
    assert resolved.sla_at_risk_at is None
    assert sla_events(ticket) == [("ok", "met")]


def test_a_ticket_resolved_after_its_due_time_is_breached(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(10))
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
        clock.move_to(MONDAY + timedelta(hours=25))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")

    assert fresh(ticket).sla_status == Ticket.SlaStatus.BREACHED


def test_reopening_a_resolved_ticket_resumes_the_clock_without_the_time_it_was_resolved(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(10))
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
        clock.move_to(MONDAY + timedelta(hours=2))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        clock.move_to(MONDAY + timedelta(hours=5))
        ticket_transition(ticket_id=ticket.pk, actor=requester, to="open", note="Still jams.")
        reopened = fresh(ticket)

    assert reopened.status == Ticket.Status.OPEN
    assert reopened.resolved_at is None
    assert reopened.resolution_due_at == MONDAY + timedelta(days=1, hours=3)
    assert reopened.sla_at_risk_at == MONDAY + minutes(1152) + timedelta(hours=3)
    assert reopened.sla_status == Ticket.SlaStatus.OK
    assert sla_events(ticket) == [("ok", "met"), ("met", "ok")]


@pytest.mark.usefixtures("office_hours")
def test_reopening_on_business_hours_resumes_the_clock_in_working_time(requester: Any, agent: Any) -> None:
    with time_machine.travel(berlin(2024, 6, 3, 9, 0), tick=False) as clock:
        ticket = make_ticket(requester, priority="critical")
        clock.move_to(berlin(2024, 6, 3, 9, 10))
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
        clock.move_to(berlin(2024, 6, 3, 10, 0))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        clock.move_to(berlin(2024, 6, 3, 16, 0))
        ticket_transition(ticket_id=ticket.pk, actor=requester, to="open")
        reopened = fresh(ticket)

    # 60 of 240 working minutes ran before the resolution; 60 more until Monday 17:00, 120 on Tuesday.
    assert reopened.resolution_due_at == berlin(2024, 6, 4, 11, 0)


def test_a_ticket_resolved_before_any_comment_counts_the_resolution_as_the_response(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(30))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved", note="Rebooted the printer.")
        resolved = fresh(ticket)

    assert resolved.sla_status == Ticket.SlaStatus.MET
    assert resolved.response_due_at == MONDAY + minutes(60)


def test_closing_a_ticket_resolved_in_time_days_later_keeps_it_met(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(30))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        clock.move_to(MONDAY + timedelta(days=3))
        ticket_transition(ticket_id=ticket.pk, actor=requester, to="closed")
        closed = fresh(ticket)

    assert closed.status == Ticket.Status.CLOSED
    assert closed.sla_status == Ticket.SlaStatus.MET
    assert sla_events(ticket) == [("ok", "met")]


def test_a_late_public_comment_on_a_resolved_ticket_does_not_breach_it(requester: Any, agent: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(30))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        clock.move_to(MONDAY + timedelta(days=1))
        comment_create(ticket_id=ticket.pk, author=agent, body="Glad it works again.")

    assert fresh(ticket).sla_status == Ticket.SlaStatus.MET


def test_a_ticket_resolved_without_a_response_after_the_response_due_time_is_breached(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(90))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")

    assert fresh(ticket).sla_status == Ticket.SlaStatus.BREACHED


def test_a_reopened_ticket_without_a_response_does_not_count_the_resolved_time_against_the_response(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(20))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        clock.move_to(MONDAY + minutes(200))
        ticket_transition(ticket_id=ticket.pk, actor=requester, to="open")
        reopened = fresh(ticket)

    # 20 response minutes ran before the resolution, the other 40 run from the reopening.
    assert reopened.response_due_at == MONDAY + minutes(240)
    assert reopened.sla_at_risk_at == MONDAY + minutes(228)
    assert reopened.sla_status == Ticket.SlaStatus.OK


# Recomputing after a policy change


def test_recomputing_after_changing_the_policys_calendar_moves_the_due_times_of_open_tickets(
    requester: Any, agent: Any, office_calendar: BusinessCalendar
) -> None:
    friday = berlin(2024, 6, 7, 16, 30)
    with time_machine.travel(friday, tick=False) as clock:
        open_ticket = make_ticket(requester, priority="high")
        paused_ticket = make_ticket(requester, priority="high")
        ticket_transition(ticket_id=paused_ticket.pk, actor=agent, to="open")
        ticket_transition(ticket_id=paused_ticket.pk, actor=agent, to="pending")
        done_ticket = make_ticket(requester, priority="high")
        ticket_transition(ticket_id=done_ticket.pk, actor=agent, to="resolved")
        assert fresh(open_ticket).response_due_at == friday + minutes(60)

        policy = sla_policy_default()
        policy.calendar = office_calendar
        policy.save()
        clock.move_to(friday + minutes(5))
        count = sla_recompute_open_tickets()

    assert count == 2
    recomputed = fresh(open_ticket)
    assert recomputed.response_due_at == berlin(2024, 6, 10, 9, 30)
    assert recomputed.resolution_due_at == berlin(2024, 6, 12, 16, 30)
    assert recomputed.sla_at_risk_at == berlin(2024, 6, 10, 9, 18)
    assert fresh(paused_ticket).sla_status == Ticket.SlaStatus.PAUSED
    untouched = fresh(done_ticket)
    assert untouched.response_due_at == friday + minutes(60)
    assert untouched.resolution_due_at == friday + timedelta(days=1)


def test_recomputing_after_changing_a_target_moves_the_due_times(requester: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        policy = sla_policy_default()
        policy.high_response_minutes = 30
        policy.save()
        clock.move_to(MONDAY + minutes(1))
        sla_recompute_open_tickets()

    recomputed = fresh(ticket)
    assert recomputed.response_due_at == MONDAY + minutes(30)
    assert recomputed.sla_at_risk_at == MONDAY + minutes(24)


def test_recomputing_with_a_shorter_target_already_passed_breaches_the_ticket(requester: Any) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        clock.move_to(MONDAY + minutes(40))
        policy = sla_policy_default()
        policy.high_response_minutes = 30
        policy.save()
        sla_recompute_open_tickets()

    assert fresh(ticket).sla_status == Ticket.SlaStatus.BREACHED
    assert sla_events(ticket) == [("ok", "breached")]


def test_recomputing_twice_changes_nothing_the_second_time(requester: Any) -> None:
    with time_machine.travel(MONDAY, tick=False):
        ticket = make_ticket(requester, priority="high")
        sla_recompute_open_tickets()
        before = fresh(ticket)
        sla_recompute_open_tickets()
        after = fresh(ticket)

    assert (after.response_due_at, after.resolution_due_at, after.sla_at_risk_at, after.sla_status) == (
        before.response_due_at,
        before.resolution_due_at,
        before.sla_at_risk_at,
        before.sla_status,
    )
    assert sla_events(ticket) == []


def test_a_ticket_resolved_the_moment_it_was_opened_keeps_due_times_and_has_met_them(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(MONDAY, tick=False):
        ticket = make_ticket(requester, priority="high")
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        resolved = fresh(ticket)

    assert resolved.response_due_at == MONDAY + minutes(60)
    assert resolved.resolution_due_at == MONDAY + timedelta(days=1)
    assert resolved.sla_status == Ticket.SlaStatus.MET


@pytest.mark.usefixtures("office_hours")
def test_recomputing_reads_the_calendar_once_and_the_history_once_per_ticket(requester: Any) -> None:
    with time_machine.travel(MONDAY, tick=False):
        for _ in range(3):
            make_ticket(requester, priority="high")
        with CaptureQueriesContext(connection) as three:
            sla_recompute_open_tickets()
        for _ in range(3):
            make_ticket(requester, priority="high")
        with CaptureQueriesContext(connection) as six:
            sla_recompute_open_tickets()

    assert len(six) - len(three) == 3
