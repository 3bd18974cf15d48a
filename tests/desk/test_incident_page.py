"""An incident's admin page as the commander's desk: the lifecycle's moves, the timeline with its note box, "page
again", and the post-mortem with its action items, every post through the incident services."""

from __future__ import annotations

import re
from typing import Any

import pytest

from itsm.lifecycles import INCIDENT_TRANSITIONS
from itsm.models import Event, Incident, Notification, Postmortem, Ticket
from itsm.services.incidents import incident_create, incident_note, incident_transition, postmortem_add_action_item
from tests.conftest import page_text
from tests.desk.conftest import Desk, buttons, shown_messages
from tests.factories import make_user

INCIDENTS = "/admin/itsm/incident/"
# How to reach each state from detected.
WALK = {
    "detected": [],
    "acknowledged": ["acknowledged"],
    "diagnosing": ["diagnosing"],
    "mitigating": ["mitigating"],
    "resolved": ["resolved"],
    "reviewed": ["resolved", "reviewed"],
}
SECTIONS = {
    "summary": "The API answered 502.",
    "impact": "Every customer for 20 minutes.",
    "root_cause": "A pool too small.",
    "trigger": "",
    "detection": "",
    "resolution": "A bigger pool.",
    "lessons": "",
}


def page(incident: Incident) -> str:
    return f"{INCIDENTS}{incident.pk}/change/"


def desk_url(incident: Incident, name: str) -> str:
    return f"{INCIDENTS}{incident.pk}/desk/{name}/"


@pytest.fixture
def incident(agent: Any) -> Incident:
    return incident_create(actor=agent, title="API answers 502", severity="low")


@pytest.mark.parametrize("status", list(INCIDENT_TRANSITIONS))
def test_the_page_offers_exactly_the_moves_the_lifecycle_allows(
    desk: Desk, agent: Any, incident: Incident, status: str
) -> None:
    for to in WALK[status]:
        incident_transition(incident_id=incident.pk, actor=agent, to=to)
    response = desk.get(page(incident))
    assert set(buttons(response, "move-form")) == INCIDENT_TRANSITIONS[status]
    if status == "resolved":
        assert "Reopen (diagnosing)" in page_text(response)


def test_a_commander_walks_the_incident_through_every_state_from_its_page(
    desk: Desk, agent: Any, incident: Incident
) -> None:
    for to in ("acknowledged", "diagnosing", "mitigating", "resolved", "diagnosing", "resolved", "reviewed"):
        assert desk.post(desk_url(incident, "move"), {"to": to, "note": f"to {to}"}).status_code == 302
        incident.refresh_from_db()
        assert incident.status == to
    moves = Event.objects.filter(incident=incident, kind="transition").values_list("new_value", "note", "actor")
    assert list(moves)[-1] == ("reviewed", "to reviewed", agent.pk)
    assert incident.commander == agent  # the one who acknowledged it


def test_a_refused_move_is_a_message_and_changes_nothing(desk: Desk, agent: Any) -> None:
    critical = incident_create(actor=agent, title="Checkout down", severity="critical")
    incident_transition(incident_id=critical.pk, actor=agent, to="resolved")
    for to, expected in (
        ("reviewed", "can be marked reviewed only with a final post-mortem"),
        ("mitigating", "Cannot move from 'resolved' to 'mitigating'."),
        ("gone", "Move to: Select a valid choice."),
    ):
        desk.post(desk_url(critical, "move"), {"to": to})
        critical.refresh_from_db()
        assert critical.status == "resolved"
        shown = shown_messages(desk.get(page(critical)))
        assert any(expected in message for message in shown), shown


@pytest.mark.parametrize(("kind", "event_kind"), [("internal", "note"), ("public", "status_update")])
def test_a_note_is_an_internal_note_or_a_public_status_update(
    desk: Desk, agent: Any, incident: Incident, kind: str, event_kind: str
) -> None:
    desk.post(desk_url(incident, "note"), {"body": "Rolling back.", "kind": kind})
    event = Event.objects.get(incident=incident, kind=event_kind)
    assert (event.note, event.actor) == ("Rolling back.", agent)
    text = page_text(desk.get(page(incident)))
    assert ("Internal note" if kind == "internal" else "Public status update") in text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"body": "", "kind": "public"}, "Note: This field is required."),
        ({"body": "Call dba@example.com", "kind": "public"}, "remove the e-mail address"),
        ({"body": "Hello", "kind": "tweet"}, "Post as: Select a valid choice."),
    ],
)
def test_a_bad_note_is_a_message_keeps_the_text_and_changes_nothing(
    desk: Desk, incident: Incident, data: dict[str, str], expected: str
) -> None:
    before = Event.objects.filter(incident=incident).count()
    desk.post(desk_url(incident, "note"), data)
    assert Event.objects.filter(incident=incident).count() == before
    response = desk.get(page(incident))
    assert any(expected in message for message in shown_messages(response))
    form = re.search(r'<form[^>]*id="note-form".*?</form>', page_text(response), re.S)
    assert form is not None
    assert 'class="errorlist' in form.group(0)
    assert data["body"] in form.group(0)


def test_the_post_mortem_is_written_in_place_and_made_final_once_resolved(
    desk: Desk, agent: Any, incident: Incident
) -> None:
    desk.post(desk_url(incident, "postmortem"), {**SECTIONS, "status": "draft"})
    postmortem = Postmortem.objects.get(incident=incident)
    assert (postmortem.status, postmortem.root_cause, postmortem.author) == ("draft", "A pool too small.", agent)
    assert "A pool too small." in page_text(desk.get(page(incident)))  # the form shows what is saved

    desk.post(desk_url(incident, "postmortem"), {**SECTIONS, "status": "final"})
    postmortem.refresh_from_db()
    assert postmortem.status == "draft"
    assert any("only once the incident is resolved" in m for m in shown_messages(desk.get(page(incident))))

    incident_transition(incident_id=incident.pk, actor=agent, to="resolved")
    desk.post(desk_url(incident, "postmortem"), {**SECTIONS, "status": "final", "resolution": ""})
    postmortem.refresh_from_db()
    assert (postmortem.status, postmortem.resolution) == ("draft", "A bigger pool.")
    response = desk.get(page(incident))
    assert any("A final post-mortem needs this section." in m for m in shown_messages(response))
    form = re.search(r'<form[^>]*id="postmortem-form".*?</form>', page_text(response), re.S)
    assert form is not None
    assert "A final post-mortem needs this section." in form.group(0)  # beside the resolution box

    desk.post(desk_url(incident, "postmortem"), {**SECTIONS, "status": "final"})
    postmortem.refresh_from_db()
    assert postmortem.status == "final"
    assert postmortem.finalized_at is not None


def test_an_action_item_is_a_ticket_linked_to_the_post_mortem(desk: Desk, agent: Any, incident: Incident) -> None:
    bob = make_user("bob", "agent")
    desk.post(desk_url(incident, "action-item"), {"title": "Alert on pool use", "priority": "high", "assignee": bob.pk})
    ticket = Ticket.objects.get(category="postmortem")
    assert (ticket.title, ticket.priority, ticket.assignee) == ("Alert on pool use", "high", bob)
    assert list(Postmortem.objects.get(incident=incident).action_items.all()) == [ticket]
    assert f"#{ticket.pk} Alert on pool use" in page_text(desk.get(page(incident)))


def test_an_action_item_without_a_title_is_refused(desk: Desk, incident: Incident) -> None:
    desk.post(desk_url(incident, "action-item"), {"title": "", "priority": "high"})
    assert not Ticket.objects.exists()
    assert any("Action item: This field is required." in m for m in shown_messages(desk.get(page(incident))))


def test_page_again_pages_the_on_call_now_and_records_who_asked(
    desk: Desk, agent: Any, admin: Any, incident: Incident
) -> None:
    before = Notification.objects.filter(incident=incident).count()
    desk.post(desk_url(incident, "page-again"))
    page_event = Event.objects.get(incident=incident, kind="page")
    assert (page_event.actor, page_event.new_value) == (agent, "adam")  # no team: the platform's admins
    urgent = Notification.objects.filter(incident=incident, urgent=True, recipient=admin)
    assert Notification.objects.filter(incident=incident).count() > before
    assert urgent.exists()
    text = page_text(desk.get(page(incident)))
    assert "Paged again: adam." in text
    assert "paged adam again" in text


def test_a_resolved_incident_is_not_paged_again(desk: Desk, agent: Any, admin: Any, incident: Incident) -> None:
    incident_transition(incident_id=incident.pk, actor=agent, to="resolved")
    assert 'id="page-again-form"' not in page_text(desk.get(page(incident)))
    desk.post(desk_url(incident, "page-again"))
    assert not Event.objects.filter(incident=incident, kind="page").exists()
    assert any("nobody is paged for a closed incident" in m for m in shown_messages(desk.get(page(incident))))


# +1 since two factors: whether the user has an authenticator app, asked once per admin request.
INCIDENT_PAGE_BUDGET = 16


def test_the_incident_page_costs_the_same_however_long_its_timeline(
    desk: Desk, agent: Any, incident: Incident, django_assert_max_num_queries: Any
) -> None:
    quiet = incident_create(actor=agent, title="Quiet", severity="low")
    for number in range(20):
        incident_note(incident_id=incident.pk, actor=make_user(f"helper{number}", "agent"), body=f"Note {number}")
        postmortem_add_action_item(incident_id=incident.pk, actor=agent, title=f"Item {number}", assignee=agent)
    desk.get(page(quiet))
    for one in (quiet, incident):
        with django_assert_max_num_queries(INCIDENT_PAGE_BUDGET):
            assert desk.get(page(one)).status_code == 200


def test_a_postmortem_saved_from_a_page_read_before_someone_elses_save_is_refused_and_kept_as_a_draft(
    desk: Desk, agent: Any
) -> None:
    incident = incident_create(actor=agent, title="DB pool exhausted", severity="low")
    other = Desk(make_user("bob", "agent"))
    page = desk.get(f"/admin/itsm/incident/{incident.pk}/change/")
    shown = re.findall(r'<input type="hidden" name="version" value="(\d+)"', page_text(page))
    # The page carries the versions it was read at: the post-mortem's (0, none written yet), the incident's.
    assert shown == ["0", str(incident.version)]
    other.post(desk_url(incident, "postmortem"), {"root_cause": "Bob's cause", "status": "draft", "version": "0"})
    refused = desk.post(
        desk_url(incident, "postmortem"),
        {"root_cause": "Alice's cause", "status": "draft", "version": "0"},
        follow=True,
    )
    assert "The post-mortem was changed by someone else" in " ".join(shown_messages(refused))
    assert Postmortem.objects.get(incident=incident).root_cause == "Bob's cause"
    again = re.findall(r'<input type="hidden" name="version" value="(\d+)"', page_text(refused))
    assert again[0] == str(Postmortem.objects.get(incident=incident).version)  # the draft, at the current version
    assert "Alice&#x27;s cause" in page_text(refused)
