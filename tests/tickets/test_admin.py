"""Tickets in the Django admin, the agents' working desk: filters, search, inlines and bulk actions, and who may
enter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from itsm.models import Comment, Event, Ticket
from itsm.services.sla import sla_policy_default
from itsm.services.tickets import comment_create, ticket_transition
from tests.conftest import page_text
from tests.factories import ServiceFactory, make_ticket, make_user

TICKETS = "/admin/itsm/ticket/"
INLINE_MANAGEMENT = {
    f"{prefix}-{name}": value
    for prefix in ("comments", "attachments", "events")
    for name, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"), ("MAX_NUM_FORMS", "0"))
}


@pytest.fixture
def service(db: Any) -> Any:
    return ServiceFactory.create(name="VPN", slug="vpn")


def _action(client: Client, action: str, tickets: list[Ticket], **data: Any) -> Any:
    return client.post(TICKETS, {"action": action, "_selected_action": [t.pk for t in tickets], **data})


# --- Ticket changelist -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "status__exact=new",
        "priority__exact=high",
        "sla_status__exact=ok",
        "service__id__exact={service}",
        "category=access",
        "assignee__id__exact={agent}",
        "created_at__year=2030",
        "q=printer",
        "q=rita",
        "q={ticket}",
        "q=%23{ticket}",
        "q=no+such+words+anywhere",
        "status__exact=new&priority__exact=high&q=VPN",
    ],
)
def test_ticket_changelist_loads_with_each_filter_and_search(
    operator: Client, requester: Any, agent: Any, service: Any, query: str
) -> None:
    ticket = make_ticket(requester, title="VPN drops every hour", service=service, category="access", assignee=agent)
    make_ticket(requester, title="Printer on floor 3 jams", priority="high")
    url = TICKETS + "?" + query.format(service=service.pk, agent=agent.pk, ticket=ticket.pk)
    response = operator.get(url)
    assert response.status_code == 200, url
    assert "errors" not in response.context or not response.context.get("errors")


def test_ticket_changelist_search_finds_tickets_by_words_id_and_requester(
    operator: Client, requester: Any, other_requester: Any
) -> None:
    vpn = make_ticket(requester, title="VPN drops every hour")
    printer = make_ticket(other_requester, title="Printer on floor 3 jams", description="Paper is stuck")

    def found(q: str) -> set[int]:
        response = operator.get(TICKETS, {"q": q})
        assert response.status_code == 200
        return {ticket.pk for ticket in response.context["cl"].result_list}

    assert found("vpn") == {vpn.pk}
    assert found("paper") == {printer.pk}
    assert found(str(printer.pk)) == {printer.pk}
    assert found("oscar") == {printer.pk}
    assert found("nothing matches this") == set()


def test_ticket_changelist_shows_the_operator_columns(operator: Client, requester: Any, agent: Any) -> None:
    make_ticket(requester, title="Laptop will not boot", priority="critical", assignee=agent)
    page = page_text(operator.get(TICKETS))
    for column in ("column-status", "column-priority", "column-sla_status", "column-assignee", "column-requester"):
        assert column in page
    assert "Laptop will not boot" in page
    assert "alice" in page


def test_ticket_changelist_runs_a_bounded_number_of_queries_whatever_the_ticket_count(
    operator: Client, requester: Any, agent: Any, service: Any, django_assert_max_num_queries: Any
) -> None:
    for number in range(30):
        ticket = make_ticket(
            make_user(f"requester{number}"),
            title=f"Problem number {number}",
            service=ServiceFactory.create(),
            assignee=make_user(f"agent{number}", "agent"),
            category=f"category {number}",
        )
        comment_create(ticket_id=ticket.pk, author=agent, body="Looking")
    # 13: the queue counts above the list are one statement (tests/desk/test_queues.py).
    with django_assert_max_num_queries(13):
        response = operator.get(TICKETS)
    assert response.status_code == 200
    with django_assert_max_num_queries(13):
        response = operator.get(TICKETS, {"q": "problem", "status__exact": "open"})
    assert response.status_code == 200


# --- Ticket change page ------------------------------------------------------------------------------------


def test_ticket_change_page_shows_the_comments_and_events_in_its_thread(
    operator: Client, requester: Any, agent: Any
) -> None:
    ticket = make_ticket(requester, title="Mailbox full")
    comment_create(ticket_id=ticket.pk, author=agent, body="I raised your quota.")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved", note="Quota raised")
    page = page_text(operator.get(f"{TICKETS}{ticket.pk}/change/"))
    assert "I raised your quota." in page
    assert "Quota raised" in page
    assert "moved it from new to resolved" in page
    assert "opened the ticket" in page


def test_the_ticket_shows_the_sla_policy_it_runs_on_read_only(operator: Client, requester: Any) -> None:
    ticket = make_ticket(requester, title="Mailbox full")
    page = page_text(operator.get(f"{TICKETS}{ticket.pk}/change/"))
    assert "SLA policy" in page
    assert f'href="/admin/itsm/slapolicy/{sla_policy_default().pk}/change/"' in page
    assert 'name="sla_policy"' not in page
    assert "Default" in page_text(operator.get(TICKETS))


def test_ticket_change_page_runs_a_bounded_number_of_queries_whatever_the_history(
    operator: Client, requester: Any, agent: Any, django_assert_max_num_queries: Any
) -> None:
    ticket = make_ticket(requester, title="Mailbox full")
    for number in range(15):
        author = make_user(f"helper{number}", "agent")
        comment_create(ticket_id=ticket.pk, author=author, body=f"Note {number}")
    # The desk's thread above the form (tests/desk/test_ticket_page.py has the page's budget).
    with django_assert_max_num_queries(16):
        response = operator.get(f"{TICKETS}{ticket.pk}/change/")
    assert response.status_code == 200


def test_adding_a_ticket_in_the_admin_creates_it_through_the_service(
    operator: Client, admin: Any, requester: Any, agent: Any, service: Any
) -> None:
    response = operator.post(
        f"{TICKETS}add/",
        {
            "title": "New starter needs a laptop",
            "description": "Starts on Monday.",
            "priority": "high",
            "category": "access",
            "service": service.pk,
            "requester": requester.pk,
            "assignee": agent.pk,
            **INLINE_MANAGEMENT,
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    ticket = Ticket.objects.get(title="New starter needs a laptop")
    assert (ticket.requester, ticket.assignee, ticket.service, ticket.priority) == (requester, agent, service, "high")
    created = Event.objects.get(ticket=ticket, kind=Event.Kind.CREATED)
    assert created.actor == admin
    assert ticket.response_due_at is not None
    assert ticket.resolution_due_at is not None
    assert ticket.resolution_due_at - ticket.created_at == timedelta(
        minutes=sla_policy_default().high_resolution_minutes
    )


def test_assignee_choices_in_the_ticket_form_are_agents_and_admins_only(
    operator: Client, requester: Any, agent: Any
) -> None:
    response = operator.get(f"{TICKETS}add/")
    choices = {str(choice[0]) for choice in response.context["adminform"].form.fields["assignee"].choices}
    assert str(agent.pk) in choices
    assert str(requester.pk) not in choices


def _change_form(ticket: Ticket, **changes: Any) -> dict[str, Any]:
    ticket.refresh_from_db()
    data = {
        "title": ticket.title,
        "description": ticket.description,
        "priority": ticket.priority,
        "category": ticket.category,
        "requester": ticket.requester_id,
        "service": ticket.service_id or "",
        "assignee": ticket.assignee_id or "",
        **INLINE_MANAGEMENT,
    }
    comments = list(ticket.comments.all())
    data.update({"comments-TOTAL_FORMS": len(comments), "comments-INITIAL_FORMS": len(comments)})
    for index, comment in enumerate(comments):
        data[f"comments-{index}-id"] = comment.pk
        data[f"comments-{index}-ticket"] = ticket.pk
        data[f"comments-{index}-body"] = comment.body
        if comment.internal:
            data[f"comments-{index}-internal"] = "on"
    attachments = list(ticket.attachments.all())
    data.update({"attachments-TOTAL_FORMS": len(attachments), "attachments-INITIAL_FORMS": len(attachments)})
    for index, attachment in enumerate(attachments):
        data[f"attachments-{index}-id"] = attachment.pk
        data[f"attachments-{index}-ticket"] = ticket.pk
    events = list(ticket.events.all())
    data.update({"events-TOTAL_FORMS": len(events), "events-INITIAL_FORMS": len(events)})
    for index, event in enumerate(events):
        data[f"events-{index}-id"] = event.pk
        data[f"events-{index}-ticket"] = ticket.pk
    data.update(changes)
    return data


def test_editing_the_priority_in_the_admin_writes_an_event_and_recomputes_the_due_time(
    operator: Client, admin: Any, requester: Any, agent: Any
) -> None:
    ticket = make_ticket(requester, title="Printer jams", priority="low")
    comment_create(ticket_id=ticket.pk, author=agent, body="On my way.")
    ticket.refresh_from_db()
    low_due, version = ticket.resolution_due_at, ticket.version
    response = operator.post(f"{TICKETS}{ticket.pk}/change/", _change_form(ticket, priority="critical"))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert ticket.priority == "critical"
    assert ticket.resolution_due_at is not None
    assert low_due is not None
    assert ticket.resolution_due_at < low_due
    assert ticket.resolution_due_at - ticket.created_at == timedelta(
        minutes=sla_policy_default().critical_resolution_minutes
    )
    change = Event.objects.get(ticket=ticket, kind=Event.Kind.CHANGED, field="priority")
    assert (change.old_value, change.new_value, change.actor) == ("low", "critical", admin)
    assert ticket.version == version + 1


def test_saving_the_ticket_form_unchanged_writes_no_event(operator: Client, requester: Any) -> None:
    ticket = make_ticket(requester, title="Printer jams")
    before = Event.objects.filter(ticket=ticket).count()
    response = operator.post(f"{TICKETS}{ticket.pk}/change/", _change_form(ticket))
    assert response.status_code == 302
    assert Event.objects.filter(ticket=ticket).count() == before


def test_the_requester_of_an_existing_ticket_is_read_only_in_the_admin(
    operator: Client, requester: Any, other_requester: Any
) -> None:
    ticket = make_ticket(requester, title="Printer jams")
    response = operator.post(f"{TICKETS}{ticket.pk}/change/", _change_form(ticket, requester=other_requester.pk))
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.requester == requester


# --- Bulk actions ------------------------------------------------------------------------------------------


def test_bulk_assign_asks_for_the_agent_then_assigns_every_ticket_with_one_event_each(
    operator: Client, admin: Any, requester: Any, agent: Any
) -> None:
    tickets = [make_ticket(requester, title=f"Desk phone {n} dead") for n in range(3)]
    form = _action(operator, "assign", tickets)
    assert form.status_code == 200
    page = page_text(form)
    assert 'name="assignee"' in page
    assert "Desk phone 2 dead" in page
    assert not Ticket.objects.filter(assignee__isnull=False).exists()

    done = _action(operator, "assign", tickets, apply="1", assignee=agent.pk)
    assert done.status_code == 302
    assert set(Ticket.objects.values_list("assignee", flat=True)) == {agent.pk}
    for ticket in tickets:
        event = Event.objects.get(ticket=ticket, kind=Event.Kind.CHANGED, field="assignee")
        assert (event.old_value, event.new_value, event.actor) == ("", str(agent.pk), admin)
    assert "Updated 3 tickets" in page_text(operator.get(TICKETS))


def test_bulk_change_priority_asks_for_the_priority_then_changes_it_and_the_due_times(
    operator: Client, requester: Any
) -> None:
    tickets = [make_ticket(requester, title=f"Slow VPN {n}", priority="low") for n in range(2)]
    form = _action(operator, "change_priority", tickets)
    assert form.status_code == 200
    assert 'name="priority"' in page_text(form)

    done = _action(operator, "change_priority", tickets, apply="1", priority="critical")
    assert done.status_code == 302
    critical_minutes = sla_policy_default().critical_resolution_minutes
    for ticket in Ticket.objects.all():
        assert ticket.priority == "critical"
        assert ticket.resolution_due_at is not None
        assert ticket.resolution_due_at - ticket.created_at == timedelta(minutes=critical_minutes)
        assert Event.objects.filter(ticket=ticket, kind=Event.Kind.CHANGED, field="priority").count() == 1


def test_bulk_change_priority_on_all_matching_tickets_sends_the_selection_back_as_a_flag(
    operator: Client, requester: Any
) -> None:
    low = [make_ticket(requester, title=f"Slow VPN {n}", priority="low") for n in range(25)]
    high = make_ticket(requester, title="Mail down", priority="high")
    url = f"{TICKETS}?priority__exact=low"
    form = operator.post(url, {"action": "change_priority", "select_across": "1", "_selected_action": [low[0].pk]})
    page = page_text(form)
    assert "25 tickets" in page
    assert "and 5 more" in page
    assert page.count('name="_selected_action"') == 1
    assert 'name="select_across" value="1"' in page

    done = operator.post(
        url,
        {
            "action": "change_priority",
            "select_across": "1",
            "_selected_action": [low[0].pk],
            "apply": "1",
            "priority": "critical",
        },
        follow=True,
    )
    assert "Updated 25 tickets" in page_text(done)
    assert Ticket.objects.filter(priority="critical").count() == 25
    high.refresh_from_db()
    assert high.priority == "high"


@pytest.mark.parametrize("assignee", ["", "999999", "requester", "not-a-number"])
def test_bulk_assign_with_an_invalid_assignee_shows_the_form_again_and_changes_nothing(
    operator: Client, requester: Any, assignee: str
) -> None:
    tickets = [make_ticket(requester, title=f"Desk phone {n} dead") for n in range(2)]
    value = str(requester.pk) if assignee == "requester" else assignee
    response = _action(operator, "assign", tickets, apply="1", assignee=value)
    assert response.status_code == 200
    assert response.context["form"].errors["assignee"]
    assert 'class="errorlist' in page_text(response)
    assert not Ticket.objects.filter(assignee__isnull=False).exists()
    assert not Event.objects.filter(kind=Event.Kind.CHANGED).exists()


def test_bulk_change_priority_with_an_unknown_priority_changes_nothing(operator: Client, requester: Any) -> None:
    tickets = [make_ticket(requester, title="Slow VPN", priority="low")]
    response = _action(operator, "change_priority", tickets, apply="1", priority="urgent")
    assert response.status_code == 200
    assert response.context["form"].errors["priority"]
    assert Ticket.objects.get().priority == "low"


# --- Who may enter -----------------------------------------------------------------------------------------


def test_a_requester_cannot_reach_the_admin(requester: Any) -> None:
    client = Client()
    client.force_login(requester)
    for path in ("/admin/", TICKETS):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_an_anonymous_visitor_is_sent_to_the_admin_login(db: Any) -> None:
    response = Client().get(TICKETS)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_agent_can_work_tickets_in_the_admin(agent: Any, requester: Any) -> None:
    make_ticket(requester, title="Agent sees this")
    client = Client()
    client.force_login(agent)
    response = client.get(TICKETS)
    assert response.status_code == 200
    assert "Agent sees this" in page_text(response)


def test_comment_inline_rows_are_not_added_from_the_admin(operator: Client, requester: Any) -> None:
    ticket = make_ticket(requester, title="Printer jams")
    data = _change_form(ticket)
    data.update(
        {
            "comments-TOTAL_FORMS": "1",
            "comments-0-ticket": ticket.pk,
            "comments-0-body": "Sneaky comment",
        }
    )
    operator.post(f"{TICKETS}{ticket.pk}/change/", data)
    assert not Comment.objects.filter(body="Sneaky comment").exists()
