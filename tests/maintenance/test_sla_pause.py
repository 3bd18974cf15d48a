"""The SLA clocks of a service's tickets stop while the service is in a maintenance window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from itsm import sla
from itsm.models import Service, Ticket
from itsm.services.maintenance_lifecycle import maintenance_tick, maintenance_transition
from tests.factories import make_ticket
from tests.maintenance.conftest import START

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_without_cuts_pauses_out_of_running_intervals():
    running: list[sla.Interval] = [(at(0), at(60)), (at(90), None)]
    assert sla.without(running, [(at(10), at(20))]) == [(at(0), at(10)), (at(20), at(60)), (at(90), None)]
    assert sla.without(running, [(at(50), at(100))]) == [(at(0), at(50)), (at(100), None)]
    assert sla.without(running, [(at(-10), at(0))]) == running
    assert sla.without(running, [(at(60), at(90))]) == running
    assert sla.without(running, [(at(0), at(60))]) == [(at(90), None)]


def test_with_the_clock_paused_for_the_window_the_due_time_moves_by_its_length():
    # 60 minutes of clock time, with the window 10-40 in the middle: due at 90 instead of 60.
    running = sla.without([(at(0), None)], [(at(10), at(40))])
    assert sla.due_at(sla.ALWAYS, running, 60) == at(90)


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


def due(ticket: Ticket) -> tuple[datetime, datetime]:
    row = fresh(ticket)
    assert row.response_due_at is not None
    assert row.resolution_due_at is not None
    return row.response_due_at, row.resolution_due_at


def test_a_tickets_due_times_move_by_the_window_of_its_service_and_no_other(make_window, requester, database_service):
    other = Service.objects.create(name="Mail", slug="mail")
    with time_machine.travel(START - timedelta(hours=1), tick=False):
        ticket = make_ticket(requester, priority="medium", service=database_service)
        unrelated = make_ticket(requester, priority="medium", service=other)
    before = due(ticket)
    unrelated_before = due(unrelated)
    make_window(backup_required=False)

    with time_machine.travel(START, tick=False):
        maintenance_tick()
    assert due(ticket) == (before[0] + timedelta(minutes=30), before[1] + timedelta(minutes=30))

    with time_machine.travel(START + timedelta(minutes=30), tick=False):
        maintenance_tick()
    assert due(ticket) == (before[0] + timedelta(minutes=30), before[1] + timedelta(minutes=30))
    assert due(unrelated) == unrelated_before


def test_completing_a_window_early_pauses_the_clock_only_as_long_as_it_ran(make_window, requester, agent):
    with time_machine.travel(START - timedelta(hours=1), tick=False):
        window = make_window(backup_required=False)
        ticket = make_ticket(requester, priority="medium", service=window.services.get())
    before = due(ticket)
    with time_machine.travel(START, tick=False):
        maintenance_tick()
    with time_machine.travel(START + timedelta(minutes=10), tick=False):
        maintenance_transition(window_id=window.pk, actor=agent, to="verifying")
    assert due(ticket)[0] == before[0] + timedelta(minutes=10)


def test_aborting_a_running_window_pauses_the_clock_only_until_it_was_cancelled(make_window, requester, agent):
    with time_machine.travel(START - timedelta(hours=1), tick=False):
        window = make_window(backup_required=False)
        ticket = make_ticket(requester, priority="medium", service=window.services.get())
    before = due(ticket)
    with time_machine.travel(START, tick=False):
        maintenance_tick()
    with time_machine.travel(START + timedelta(minutes=7), tick=False):
        maintenance_transition(window_id=window.pk, actor=agent, to="cancelled")
    window.refresh_from_db()
    assert window.status == "cancelled"
    assert due(ticket) == (before[0] + timedelta(minutes=7), before[1] + timedelta(minutes=7))
