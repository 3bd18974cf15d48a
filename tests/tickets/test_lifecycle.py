"""The ticket lifecycle table, walked exhaustively through ticket_transition and the API."""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from itsm.exceptions import InvalidInput, NotPermitted
from itsm.lifecycles import (
    TICKET_DONE_STATUSES,
    TICKET_PAUSED_STATUSES,
    TICKET_REQUESTER_TARGETS,
    TICKET_TRANSITIONS,
    TransitionNotAllowed,
    check_transition,
    ticket_requester_moves,
)
from itsm.models import Event, Ticket
from itsm.services.tickets import REQUESTER_ANSWERED, comment_create, ticket_transition
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db

STATUSES = list(Ticket.Status.values)
ALL_PAIRS = [(old, new) for old, new in itertools.product(STATUSES, STATUSES) if old != new]
ALLOWED_PAIRS = [(old, new) for old, new in ALL_PAIRS if new in TICKET_TRANSITIONS[old]]
REFUSED_PAIRS = [(old, new) for old, new in ALL_PAIRS if new not in TICKET_TRANSITIONS[old]]


def path_to(status: str) -> list[str]:
    """The shortest walk through the table from `new` to `status` (without `new` itself)."""
    routes: dict[str, list[str]] = {"new": []}
    queue = deque(["new"])
    while queue:
        current = queue.popleft()
        for following in sorted(TICKET_TRANSITIONS[current]):
            if following not in routes:
                routes[following] = [*routes[current], following]
                queue.append(following)
    return routes[status]


def ticket_in(status: str, requester: Any, agent: Any) -> Ticket:
    ticket = make_ticket(requester, priority="high")
    for step in path_to(status):
        ticket_transition(ticket_id=ticket.pk, actor=agent, to=step)
    ticket.refresh_from_db()
    assert ticket.status == status
    return ticket


def transition_events(ticket: Ticket) -> list[tuple[str, str]]:
    return list(
        Event.objects.filter(ticket=ticket, kind=Event.Kind.TRANSITION)
        .order_by("created_at", "id")
        .values_list("old_value", "new_value")
    )


# The table itself


def test_the_table_names_every_status_and_only_statuses() -> None:
    assert set(TICKET_TRANSITIONS) == set(STATUSES)
    for targets in TICKET_TRANSITIONS.values():
        assert targets <= set(STATUSES)


def test_no_status_moves_to_itself_in_the_table() -> None:
    assert all(status not in targets for status, targets in TICKET_TRANSITIONS.items())


def test_every_status_is_reachable_from_new() -> None:
    assert all(path_to(status) is not None for status in STATUSES)


def test_closed_is_the_only_final_state() -> None:
    assert [status for status, targets in TICKET_TRANSITIONS.items() if not targets] == ["closed"]


def test_the_lifecycle_of_the_design_is_in_the_table() -> None:
    # new -> open -> in_progress <-> pending -> resolved -> closed; resolved -> open (reopen).
    for old, new in [
        ("new", "open"),
        ("open", "in_progress"),
        ("in_progress", "pending"),
        ("pending", "in_progress"),
        ("pending", "resolved"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
        ("resolved", "open"),
    ]:
        assert new in TICKET_TRANSITIONS[old]


def test_the_paused_and_done_statuses_are_statuses() -> None:
    assert set(STATUSES) >= TICKET_PAUSED_STATUSES | TICKET_DONE_STATUSES | TICKET_REQUESTER_TARGETS


@pytest.mark.parametrize(("old", "new"), REFUSED_PAIRS)
def test_check_transition_refuses_every_pair_missing_from_the_table(old: str, new: str) -> None:
    with pytest.raises(TransitionNotAllowed) as refused:
        check_transition(TICKET_TRANSITIONS, old, new)

    assert refused.value.allowed == TICKET_TRANSITIONS[old]


# An agent walks every pair


@pytest.mark.parametrize(("old", "new"), ALLOWED_PAIRS)
def test_an_agent_makes_every_allowed_transition_and_it_is_recorded(
    old: str, new: str, requester: Any, agent: Any
) -> None:
    ticket = ticket_in(old, requester, agent)
    events_before = transition_events(ticket)
    version_before = ticket.version

    moved = ticket_transition(ticket_id=ticket.pk, actor=agent, to=new, note="Walking the table.")

    moved.refresh_from_db()
    assert moved.status == new
    assert moved.version == version_before + 1
    assert transition_events(ticket) == [*events_before, (old, new)]
    event = Event.objects.filter(ticket=ticket, kind=Event.Kind.TRANSITION).latest("id")
    assert (event.field, event.actor_id, event.note) == ("status", agent.pk, "Walking the table.")


@pytest.mark.parametrize(("old", "new"), REFUSED_PAIRS)
def test_an_agent_is_refused_every_transition_missing_from_the_table(
    old: str, new: str, requester: Any, agent: Any
) -> None:
    ticket = ticket_in(old, requester, agent)
    events_before = transition_events(ticket)

    with pytest.raises(TransitionNotAllowed) as refused:
        ticket_transition(ticket_id=ticket.pk, actor=agent, to=new)

    message = str(refused.value)
    assert repr(old) in message
    assert repr(new) in message
    assert refused.value.allowed == TICKET_TRANSITIONS[old]
    for allowed in TICKET_TRANSITIONS[old]:
        assert allowed in message
    if not TICKET_TRANSITIONS[old]:
        assert "final state" in message
    ticket.refresh_from_db()
    assert ticket.status == old
    assert transition_events(ticket) == events_before


@pytest.mark.parametrize("status", STATUSES)
def test_asking_for_the_current_status_changes_nothing(status: str, requester: Any, agent: Any) -> None:
    ticket = ticket_in(status, requester, agent)
    events_before = list(Event.objects.filter(ticket=ticket).values_list("id", flat=True))

    again = ticket_transition(ticket_id=ticket.pk, actor=agent, to=status)

    again.refresh_from_db()
    assert again.status == status
    assert again.version == ticket.version
    assert again.updated_at == ticket.updated_at
    assert list(Event.objects.filter(ticket=ticket).values_list("id", flat=True)) == events_before


def test_an_unknown_status_is_invalid_input(requester: Any, agent: Any) -> None:
    ticket = make_ticket(requester)

    with pytest.raises(InvalidInput) as invalid:
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="done")

    assert "to" in invalid.value.errors


def test_resolving_and_closing_stamp_their_times_and_reopening_clears_the_resolution(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(datetime(2024, 6, 3, 10, 0, tzinfo=UTC), tick=False) as clock:
        ticket = make_ticket(requester)
        clock.shift(60)
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
        ticket.refresh_from_db()
        resolved_at = ticket.resolved_at
        assert resolved_at is not None
        clock.shift(60)
        ticket_transition(ticket_id=ticket.pk, actor=requester, to="open")
        ticket.refresh_from_db()
        assert ticket.resolved_at is None
        clock.shift(60)
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="closed")
        ticket.refresh_from_db()

    assert ticket.closed_at is not None
    assert ticket.resolved_at == ticket.closed_at
    assert ticket.closed_at - resolved_at == timedelta(minutes=2)


# What a requester may do


def requester_may(old: str, new: str) -> bool:
    """Withdraw or accept (close where the table allows it), or reopen a resolved ticket."""
    return (new == "closed" and new in TICKET_TRANSITIONS[old]) or (old == "resolved" and new == "open")


@pytest.mark.parametrize("old", STATUSES)
def test_the_requesters_moves_the_portal_offers_are_exactly_those_the_service_allows(old: str) -> None:
    assert ticket_requester_moves(old) == {new for new in STATUSES if new != old and requester_may(old, new)}


@pytest.mark.parametrize(("old", "new"), [(o, n) for o, n in ALL_PAIRS if requester_may(o, n)])
def test_a_requester_may_close_or_reopen_their_ticket(old: str, new: str, requester: Any, agent: Any) -> None:
    ticket = ticket_in(old, requester, agent)

    moved = ticket_transition(ticket_id=ticket.pk, actor=requester, to=new)

    moved.refresh_from_db()
    assert moved.status == new
    event = Event.objects.filter(ticket=ticket, kind=Event.Kind.TRANSITION).latest("id")
    assert (event.old_value, event.new_value, event.actor_id) == (old, new, requester.pk)


@pytest.mark.parametrize(("old", "new"), [(o, n) for o, n in ALL_PAIRS if n not in TICKET_REQUESTER_TARGETS])
def test_a_requester_may_not_move_their_ticket_anywhere_else(old: str, new: str, requester: Any, agent: Any) -> None:
    ticket = ticket_in(old, requester, agent)

    with pytest.raises(NotPermitted):
        ticket_transition(ticket_id=ticket.pk, actor=requester, to=new)

    ticket.refresh_from_db()
    assert ticket.status == old


@pytest.mark.parametrize(
    ("old", "new"),
    [(o, n) for o, n in ALL_PAIRS if n in TICKET_REQUESTER_TARGETS and n not in TICKET_TRANSITIONS[o]],
)
def test_a_requester_closing_or_reopening_out_of_turn_is_told_what_is_allowed(
    old: str, new: str, requester: Any, agent: Any
) -> None:
    ticket = ticket_in(old, requester, agent)

    with pytest.raises(TransitionNotAllowed) as refused:
        ticket_transition(ticket_id=ticket.pk, actor=requester, to=new)

    assert refused.value.allowed == TICKET_TRANSITIONS[old]


@pytest.mark.parametrize("old", [o for o in STATUSES if "open" in TICKET_TRANSITIONS[o] and o != "resolved"])
def test_a_requester_may_not_take_a_ticket_back_to_open_unless_it_was_resolved(
    old: str, requester: Any, agent: Any
) -> None:
    ticket = ticket_in(old, requester, agent)

    with contextlib.suppress(NotPermitted):
        ticket_transition(ticket_id=ticket.pk, actor=requester, to="open")

    ticket.refresh_from_db()
    assert ticket.status == old


def test_the_requesters_answer_takes_a_pending_ticket_back_to_the_agents(requester: Any, agent: Any) -> None:
    ticket = ticket_in("pending", requester, agent)

    comment_create(ticket_id=ticket.pk, author=requester, body="Here is the screenshot you asked for.")

    ticket.refresh_from_db()
    assert ticket.status == "in_progress"
    moved = Event.objects.filter(ticket=ticket, kind=Event.Kind.TRANSITION).order_by("created_at", "id").last()
    assert moved is not None
    assert (moved.old_value, moved.new_value, moved.actor, moved.note) == (
        "pending",
        "in_progress",
        requester,
        REQUESTER_ANSWERED,
    )


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "pending"])
def test_the_requesters_answer_moves_no_ticket_that_was_not_waiting_on_them(
    status: str, requester: Any, agent: Any
) -> None:
    ticket = ticket_in(status, requester, agent)

    comment_create(ticket_id=ticket.pk, author=requester, body="Any news?")

    ticket.refresh_from_db()
    assert ticket.status == status


@pytest.mark.parametrize(("author", "internal"), [("agent", False), ("agent", True), ("watcher", False)])
def test_only_the_requesters_public_answer_ends_the_wait(
    author: str, internal: bool, requester: Any, agent: Any, other_requester: Any
) -> None:
    ticket = ticket_in("pending", requester, agent)
    writer = agent if author == "agent" else other_requester

    comment_create(ticket_id=ticket.pk, author=writer, body="A word.", internal=internal)

    ticket.refresh_from_db()
    assert ticket.status == "pending"


# Through the API


def test_an_illegal_transition_is_a_409_naming_the_allowed_states(as_agent: Any, requester: Any) -> None:
    ticket = make_ticket(requester)

    response = as_agent.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "pending"}, format="json")

    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "transition_not_allowed"
    assert body["allowed"] == ["closed", "in_progress", "open", "resolved"]
    assert "closed, in_progress, open, resolved" in body["detail"]


def test_a_transition_out_of_closed_is_a_409_that_names_no_next_state(
    as_agent: Any, requester: Any, agent: Any
) -> None:
    ticket = ticket_in("closed", requester, agent)

    response = as_agent.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "open"}, format="json")

    assert response.status_code == 409
    assert response.json()["allowed"] == []
    assert "final state" in response.json()["detail"]


def test_an_allowed_transition_through_the_api_returns_the_ticket_and_its_new_etag(
    as_agent: Any, requester: Any
) -> None:
    ticket = make_ticket(requester)

    response = as_agent.post(
        f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "in_progress", "note": "Taking it."}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "in_progress"
    assert response["ETag"] == f'"{ticket.pk}-2"'
    event = Event.objects.get(ticket=ticket, kind=Event.Kind.TRANSITION)
    assert (event.old_value, event.new_value, event.note) == ("new", "in_progress", "Taking it.")


def test_the_same_status_through_the_api_is_a_harmless_200(as_agent: Any, requester: Any) -> None:
    ticket = make_ticket(requester)

    response = as_agent.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "new"}, format="json")

    assert response.status_code == 200
    assert response["ETag"] == f'"{ticket.pk}-1"'
    assert not Event.objects.filter(ticket=ticket, kind=Event.Kind.TRANSITION).exists()


def test_a_requester_resolving_their_own_ticket_is_a_403(as_requester: Any, requester: Any) -> None:
    ticket = make_ticket(requester)

    response = as_requester.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "resolved"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_requester_closing_their_own_new_ticket_is_a_200(as_requester: Any, requester: Any) -> None:
    ticket = make_ticket(requester)

    response = as_requester.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "closed"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "closed"


def test_a_requester_cannot_transition_another_requesters_ticket(as_other_requester: Any, requester: Any) -> None:
    ticket = make_ticket(requester)

    response = as_other_requester.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "closed"}, format="json")

    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == "new"


def test_an_unknown_status_through_the_api_is_a_400(as_agent: Any, requester: Any) -> None:
    ticket = make_ticket(requester)

    response = as_agent.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "done"}, format="json")

    assert response.status_code == 400
    assert "to" in response.json()
