"""The ticket list as the agents' queues (mine, unassigned in my teams, at risk, breached, waiting on the requester)
and the bulk actions that work a selection through the ticket service; and the admin index that opens with the
agent's numbers, each linking to its queue."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from itsm.models import Event, Incident, Service, Ticket
from itsm.queries.desk import QUEUES, desk_numbers
from itsm.services.incidents import incident_create, incident_transition
from itsm.services.tickets import ticket_transition
from tests.conftest import page_text
from tests.desk.conftest import Desk, shown_messages
from tests.factories import make_ticket, make_user

TICKETS = "/admin/itsm/ticket/"


@pytest.fixture
def floor(agent: Any, requester: Any, vpn: Service, payroll: Service) -> dict[str, Ticket]:
    """One ticket for each queue, and some that belong to none."""
    bob = make_user("bob", "agent")
    tickets = {
        "mine": make_ticket(requester, title="Mine", service=payroll, assignee=agent),
        "unassigned": make_ticket(requester, title="Unassigned VPN", service=vpn),
        "other_team": make_ticket(requester, title="Unassigned payroll", service=payroll),
        "no_service": make_ticket(requester, title="No service"),
        "at_risk": make_ticket(requester, title="At risk", service=payroll, assignee=bob),
        "breached": make_ticket(requester, title="Breached", service=payroll, assignee=bob),
        "pending": make_ticket(requester, title="Waiting", service=payroll, assignee=bob),
        "done": make_ticket(requester, title="Resolved and mine", service=vpn, assignee=agent),
        "done_breached": make_ticket(requester, title="Resolved late", assignee=bob),
    }
    Ticket.objects.filter(pk=tickets["at_risk"].pk).update(sla_status="at_risk")
    Ticket.objects.filter(pk__in=[tickets["breached"].pk, tickets["done_breached"].pk]).update(sla_status="breached")
    for to in ("open", "pending"):
        ticket_transition(ticket_id=tickets["pending"].pk, actor=bob, to=to)
    for name in ("done", "done_breached"):
        ticket_transition(ticket_id=tickets[name].pk, actor=bob, to="resolved")
    return tickets


EXPECTED = {
    "mine": {"mine"},
    "unassigned": {"unassigned"},
    "at_risk": {"at_risk"},
    "breached": {"breached"},
    "pending": {"pending"},
}


@pytest.mark.parametrize("queue", list(QUEUES))
def test_each_queue_lists_exactly_its_tickets(desk: Desk, floor: dict[str, Ticket], queue: str) -> None:
    response = desk.get(TICKETS, queue=queue)
    assert response.status_code == 200
    listed = {ticket.pk for ticket in response.context["cl"].result_list}
    assert listed == {floor[name].pk for name in EXPECTED[queue]}


def test_unassigned_in_my_teams_depends_on_who_asks(floor: dict[str, Ticket], payroll: Service) -> None:
    fiona = payroll.team.members.get()  # type: ignore[union-attr]
    response = Desk(fiona).get(TICKETS, queue="unassigned")
    assert [t.pk for t in response.context["cl"].result_list] == [floor["other_team"].pk]


def test_the_list_shows_the_queues_with_their_counts_and_the_open_one(desk: Desk, floor: dict[str, Ticket]) -> None:
    text = page_text(desk.get(TICKETS, queue="breached"))
    for name, label in QUEUES.items():
        assert f'href="?queue={name}"' in text
        assert label in text
    assert 'href="?queue=breached" class="active" aria-current="page">Breached<span class="count">1</span>' in text


def test_a_queue_costs_the_same_however_many_tickets_it_holds(
    desk: Desk, requester: Any, agent: Any, vpn: Service, django_assert_max_num_queries: Any
) -> None:
    desk.get(TICKETS)
    for queue in QUEUES:
        with django_assert_max_num_queries(QUEUE_BUDGET):
            assert desk.get(TICKETS, queue=queue).status_code == 200
    for number in range(30):
        make_ticket(
            make_user(f"r{number}"), title=f"Problem {number}", service=vpn, assignee=agent if number % 2 else None
        )
    for queue in QUEUES:
        with django_assert_max_num_queries(QUEUE_BUDGET):
            assert desk.get(TICKETS, queue=queue).status_code == 200


# 14 with the SLA policy filter, which lists the policies (one statement, however many tickets).
# +1 since two factors: whether the user has an authenticator app, asked once per admin request.
QUEUE_BUDGET = 15


# --- Bulk: move to a state -------------------------------------------------------------------------------------------


def _action(desk: Desk, action: str, tickets: list[Ticket], **data: Any) -> Any:
    return desk.post(TICKETS, {"action": action, "_selected_action": [t.pk for t in tickets], **data})


def test_moving_a_selection_asks_for_the_state_then_moves_each_and_lists_each_refusal(
    desk: Desk, agent: Any, requester: Any
) -> None:
    new = make_ticket(requester, title="New one")
    opened = make_ticket(requester, title="Open one")
    ticket_transition(ticket_id=opened.pk, actor=agent, to="open")
    closed = make_ticket(requester, title="Closed one")
    ticket_transition(ticket_id=closed.pk, actor=agent, to="closed")

    form = _action(desk, "move", [new, opened, closed])
    assert form.status_code == 200
    assert 'name="to"' in page_text(form)

    done = _action(desk, "move", [new, opened, closed], apply="1", to="pending", note="Asked for details")
    assert done.status_code == 302
    statuses = dict(Ticket.objects.values_list("pk", "status"))
    assert statuses == {new.pk: "new", opened.pk: "pending", closed.pk: "closed"}
    move = Event.objects.get(ticket=opened, kind="transition", new_value="pending")
    assert (move.note, move.actor) == ("Asked for details", agent)
    shown = shown_messages(desk.get(TICKETS))
    assert "1 ticket(s) moved to pending." in shown
    assert (
        f"#{new.pk}: Cannot move from 'new' to 'pending'. Allowed next states: closed, in_progress, open, resolved."
        in shown
    )
    assert f"#{closed.pk}: Cannot move from 'closed' to 'pending'. Allowed next states: none (final state)." in shown


def test_moving_a_selection_to_an_unknown_state_shows_the_form_again_and_changes_nothing(
    desk: Desk, requester: Any
) -> None:
    ticket = make_ticket(requester, title="New one")
    response = _action(desk, "move", [ticket], apply="1", to="archived")
    assert response.status_code == 200
    assert response.context["form"].errors["to"]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.version) == ("new", 1)


def test_assigning_a_selection_still_goes_through_the_service(desk: Desk, agent: Any, requester: Any) -> None:
    tickets = [make_ticket(requester, title=f"Phone {n}") for n in range(2)]
    assert _action(desk, "assign", tickets, apply="1", assignee=agent.pk).status_code == 302
    assert set(Ticket.objects.values_list("assignee", flat=True)) == {agent.pk}
    assert Event.objects.filter(field="assignee", actor=agent).count() == 2


# --- The index -------------------------------------------------------------------------------------------------------


def test_the_index_opens_with_the_agents_numbers_each_linking_to_its_queue(
    desk: Desk, floor: dict[str, Ticket], agent: Any
) -> None:
    incident_create(actor=agent, title="Mail slow", severity="medium")
    incident_create(actor=agent, title="API down", severity="critical")
    closed = incident_create(actor=agent, title="Old", severity="critical")
    incident_transition(incident_id=closed.pk, actor=agent, to="resolved")
    text = page_text(desk.get("/admin/"))
    for name in QUEUES:
        assert f'<a href="/admin/itsm/ticket/?queue={name}" id="queue-{name}"><span class="number">1</span>' in text
    for severity, count in (("critical", 1), ("high", 0), ("medium", 1), ("low", 0)):
        link = f'href="/admin/itsm/incident/?state=open&amp;severity__exact={severity}"'
        assert f'{link} id="incidents-{severity}"><span class="number">{count}</span>' in text
    # Each link opens its queue with that many rows.
    listed = desk.get("/admin/itsm/incident/", state="open", severity__exact="critical").context["cl"].result_list
    assert [incident.title for incident in listed] == ["API down"]


def test_the_numbers_are_two_statements_whatever_the_size_of_the_desk(
    floor: dict[str, Ticket], agent: Any, django_assert_num_queries: Any
) -> None:
    for severity in Incident.Severity.values:
        incident_create(actor=agent, title=f"{severity} one", severity=severity)
    with django_assert_num_queries(2):
        numbers = desk_numbers(agent)
    assert numbers.queues == {"mine": 1, "unassigned": 1, "at_risk": 1, "breached": 1, "pending": 1}
    assert numbers.incidents == {"critical": 1, "high": 1, "medium": 1, "low": 1}


# +1 since two factors: whether the user has an authenticator app, asked once per admin request.
INDEX_BUDGET = 9


def test_the_index_costs_the_same_however_much_work_is_on_the_desk(
    desk: Desk, agent: Any, vpn: Service, django_assert_max_num_queries: Any
) -> None:
    desk.get("/admin/")
    with django_assert_max_num_queries(INDEX_BUDGET):
        assert desk.get("/admin/").status_code == 200
    for number in range(25):
        make_ticket(make_user(f"r{number}"), title=f"Problem {number}", service=vpn)
        incident_create(actor=agent, title=f"Incident {number}", severity="low")
    with django_assert_max_num_queries(INDEX_BUDGET):
        assert desk.get("/admin/").status_code == 200


def test_a_requester_cannot_reach_the_index_or_the_queues(requester: Any) -> None:
    client = Client()
    client.force_login(requester)
    for path in ("/admin/", f"{TICKETS}?queue=mine"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
