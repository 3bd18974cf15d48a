"""A ticket's admin page as the agent's desk: the conversation as one thread, the reply box, the moves the lifecycle
allows, "assign to me" and the SLA clocks; every post through the ticket services, refused input a message that
changes nothing, and a page that costs the same however long the ticket's history."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from itsm.lifecycles import TICKET_TRANSITIONS
from itsm.models import Attachment, Comment, Event, Ticket
from itsm.services.attachments import attachment_create
from itsm.services.tickets import comment_create, ticket_transition, ticket_update
from tests.conftest import page_text
from tests.desk.conftest import Desk, buttons, shown_messages
from tests.factories import make_ticket, make_user

TICKETS = "/admin/itsm/ticket/"


def page(ticket: Ticket) -> str:
    return f"{TICKETS}{ticket.pk}/change/"


def desk_url(ticket: Ticket, name: str) -> str:
    return f"{TICKETS}{ticket.pk}/desk/{name}/"


def walk_to(ticket: Ticket, actor: Any, status: str) -> None:
    """Move a new ticket to `status` through the lifecycle."""
    path = {
        "new": [],
        "open": ["open"],
        "in_progress": ["in_progress"],
        "pending": ["open", "pending"],
        "resolved": ["resolved"],
        "closed": ["closed"],
    }[status]
    for to in path:
        ticket_transition(ticket_id=ticket.pk, actor=actor, to=to)


# --- The conversation ----------------------------------------------------------------------------------------------


def test_the_page_shows_the_conversation_in_time_order_with_internal_notes_marked(
    desk: Desk, agent: Any, requester: Any
) -> None:
    base = timezone.now() - timedelta(hours=1)
    with time_machine.travel(base, tick=False):
        ticket = make_ticket(requester, title="VPN drops", description="It drops every hour.")
    with time_machine.travel(base + timedelta(minutes=1), tick=False):
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"assignee": agent})
    with time_machine.travel(base + timedelta(minutes=2), tick=False):
        note = comment_create(ticket_id=ticket.pk, author=agent, body="Lease expiry, I think.", internal=True)
        attachment_create(
            ticket=ticket, uploaded_by=agent, filename="lease.txt", content_type="text/plain", data=b"x", comment=note
        )
    with time_machine.travel(base + timedelta(minutes=3), tick=False):
        comment_create(ticket_id=ticket.pk, author=agent, body="Which router do you use?")
    with time_machine.travel(base + timedelta(minutes=4), tick=False):
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open", note="Working on it")

    text = page_text(desk.get(page(ticket)))
    thread = re.search(r'<ol class="thread" id="thread">(.*?)</ol>', text, re.S)
    assert thread is not None
    said = [
        "It drops every hour.",
        "assigned it to alice",
        "Internal note",
        "Lease expiry, I think.",
        "lease.txt",
        "Public reply",
        "Which router do you use?",
        "moved it from new to open",
        "Working on it",
    ]
    positions = [thread.group(1).find(words) for words in said]
    assert -1 not in positions, dict(zip(said, positions, strict=True))
    assert positions == sorted(positions)
    assert 'class="card internal"' in thread.group(1)
    download = Attachment.objects.get().pk
    assert f'href="/api/v1/attachments/{download}/download/"' in thread.group(1)


def test_the_ticket_page_shows_the_sla_clocks_with_the_time_left(desk: Desk, requester: Any) -> None:
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        ticket = make_ticket(requester, title="Printer", priority="high")  # 1 h response, 24 h resolution
    with time_machine.travel(start + timedelta(minutes=20), tick=False):
        text = page_text(desk.get(page(ticket)))
    assert 'First response</span> <span class="badge running">running</span>' in text
    assert "40 min left" in text
    assert "23 h 40 min left" in text
    with time_machine.travel(start + timedelta(minutes=90), tick=False):
        text = page_text(desk.get(page(ticket)))
    assert "overdue by 30 min" in text


def test_a_breached_ticket_says_so_beside_its_clocks(desk: Desk, requester: Any) -> None:
    ticket = make_ticket(requester, title="Printer")
    Ticket.objects.filter(pk=ticket.pk).update(sla_status="breached")
    assert 'id="sla-status">Breached</span>' in page_text(desk.get(page(ticket)))


# --- Replies -------------------------------------------------------------------------------------------------------


def test_a_public_reply_goes_through_the_service_and_is_the_first_response(
    desk: Desk, agent: Any, requester: Any
) -> None:
    ticket = make_ticket(requester, title="Printer")
    response = desk.post(desk_url(ticket, "reply"), {"body": "On my way.", "visibility": "public"})
    assert response.status_code == 302
    assert response["Location"] == page(ticket) + "#reply"
    comment = Comment.objects.get(ticket=ticket)
    assert (comment.author, comment.body, comment.internal) == (agent, "On my way.", False)
    ticket.refresh_from_db()
    assert ticket.first_response_at == comment.created_at
    assert Event.objects.filter(ticket=ticket, kind="comment", actor=agent).count() == 1
    assert "Reply sent to the requester." in shown_messages(desk.get(page(ticket)))


def test_an_internal_note_with_files_keeps_the_files_on_the_note(desk: Desk, agent: Any, requester: Any) -> None:
    ticket = make_ticket(requester, title="Printer")
    files = [SimpleUploadedFile(f"log{n}.txt", b"paper jam at tray 2\n", "text/plain") for n in (1, 2)]
    response = desk.post(
        desk_url(ticket, "reply"), {"body": "Logs attached.", "visibility": "internal", "files": files}
    )
    assert response.status_code == 302
    note = Comment.objects.get(ticket=ticket)
    assert note.internal
    assert sorted(a.filename for a in Attachment.objects.filter(comment=note)) == ["log1.txt", "log2.txt"]
    ticket.refresh_from_db()
    assert ticket.first_response_at is None  # a note is not a response
    assert "Internal note added with 2 files." in shown_messages(desk.get(page(ticket)))


@pytest.mark.parametrize(
    ("data", "files", "expected"),
    [
        ({"body": "", "visibility": "public"}, [], "Message: This field is required."),
        ({"body": "Hello", "visibility": "shout"}, [], "Send as: Select a valid choice."),
        ({"body": "Logs", "visibility": "internal"}, [("empty.txt", b"")], "The file is empty."),
        ({"body": "Tool", "visibility": "public"}, [("fix.exe", b"MZ\x90\x00" + b"\x00" * 60)], "not accepted"),
    ],
)
def test_a_bad_reply_is_a_message_beside_the_form_and_changes_nothing(
    desk: Desk, requester: Any, data: dict[str, str], files: list[tuple[str, bytes]], expected: str
) -> None:
    ticket = make_ticket(requester, title="Printer")
    version = ticket.version
    uploads = [SimpleUploadedFile(name, content) for name, content in files]
    response = desk.post(desk_url(ticket, "reply"), {**data, "files": uploads} if uploads else data)
    assert response.status_code == 302
    assert not Comment.objects.exists()
    assert not Attachment.objects.exists()
    ticket.refresh_from_db()
    assert ticket.version == version
    shown = desk.get(page(ticket))
    assert any(expected in message for message in shown_messages(shown)), shown_messages(shown)
    form = re.search(r'<form[^>]*id="reply-form".*?</form>', page_text(shown), re.S)
    assert form is not None
    assert 'class="errorlist' in form.group(0)  # beside the form, too
    if data["body"]:
        assert data["body"] in form.group(0)  # what was typed is kept
    # Shown once: the next view is a blank form.
    assert 'class="errorlist' not in page_text(desk.get(page(ticket))).split('id="reply-form"')[1].split("</form>")[0]


# --- Moves ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(TICKET_TRANSITIONS))
def test_the_page_offers_exactly_the_moves_the_lifecycle_allows(
    desk: Desk, agent: Any, requester: Any, status: str
) -> None:
    ticket = make_ticket(requester, title="Printer")
    walk_to(ticket, agent, status)
    offered = buttons(desk.get(page(ticket)), "move-form")
    assert set(offered) == TICKET_TRANSITIONS[status]
    assert offered == [s for s in Ticket.Status.values if s in offered]  # in the lifecycle's order


def test_a_move_goes_through_ticket_transition_with_its_note(desk: Desk, agent: Any, requester: Any) -> None:
    ticket = make_ticket(requester, title="Printer")
    walk_to(ticket, agent, "open")
    response = desk.post(desk_url(ticket, "move"), {"to": "pending", "note": "Asked which tray."})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    move = Event.objects.filter(ticket=ticket, kind="transition").last()
    assert move is not None
    assert (move.old_value, move.new_value, move.note, move.actor) == ("open", "pending", "Asked which tray.", agent)
    assert f"Ticket #{ticket.pk} is pending." in shown_messages(desk.get(page(ticket)))


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("pending", "Cannot move from 'new' to 'pending'. Allowed next states: closed, in_progress, open, resolved."),
        ("archived", "Move to: Select a valid choice. archived is not one of the available choices."),
        ("", "Move to: This field is required."),
    ],
)
def test_a_refused_move_is_a_message_not_a_500_and_changes_nothing(
    desk: Desk, requester: Any, to: str, expected: str
) -> None:
    ticket = make_ticket(requester, title="Printer")
    response = desk.post(desk_url(ticket, "move"), {"to": to, "note": "Trying"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.status, ticket.version) == ("new", 1)
    assert not Event.objects.filter(ticket=ticket, kind="transition").exists()
    shown = shown_messages(desk.get(page(ticket)))
    assert any(expected in message for message in shown), shown


def test_a_closed_ticket_offers_no_move(desk: Desk, agent: Any, requester: Any) -> None:
    ticket = make_ticket(requester, title="Printer")
    walk_to(ticket, agent, "closed")
    text = page_text(desk.get(page(ticket)))
    assert 'id="move-form"' not in text
    assert "no move is left" in text


# --- Assign to me --------------------------------------------------------------------------------------------------


def test_assign_to_me_goes_through_ticket_update(desk: Desk, agent: Any, requester: Any) -> None:
    ticket = make_ticket(requester, title="Printer", assignee=make_user("bob", "agent"))
    assert 'id="assign-to-me-form"' in page_text(desk.get(page(ticket)))
    response = desk.post(desk_url(ticket, "assign-to-me"))
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    event = Event.objects.get(ticket=ticket, field="assignee")
    assert event.actor == agent
    text = page_text(desk.get(page(ticket)))
    assert f"Ticket #{ticket.pk} is assigned to you." in text
    assert 'id="assign-to-me-form"' not in text  # it is mine now
    assert "assigned it to alice" in text  # by name on the timeline, not by id


# --- The desk's posts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reply", "move", "assign-to-me"])
def test_the_desk_urls_answer_only_post(desk: Desk, requester: Any, name: str) -> None:
    ticket = make_ticket(requester, title="Printer")
    assert desk.get(desk_url(ticket, name)).status_code == 405


def test_a_post_about_a_ticket_that_does_not_exist_is_a_404(desk: Desk) -> None:
    assert desk.post(f"{TICKETS}999999/desk/move/", {"to": "open"}).status_code == 404


# --- Cost ----------------------------------------------------------------------------------------------------------


def _long_history(ticket: Ticket, agents: list[Any], requester: Any) -> None:
    for number, author in enumerate(agents):
        comment = comment_create(ticket_id=ticket.pk, author=author, body=f"Note {number}", internal=number % 2 == 0)
        attachment_create(
            ticket=ticket,
            uploaded_by=author,
            filename=f"f{number}.txt",
            content_type="text/plain",
            data=b"x",
            comment=comment,
        )
        ticket_update(ticket_id=ticket.pk, actor=author, expected_version=None, changes={"assignee": author})
    comment_create(ticket_id=ticket.pk, author=requester, body="Any news?")


# +1 since two factors: whether the user has an authenticator app, asked once per admin request.
TICKET_PAGE_BUDGET = 17


def test_the_ticket_page_costs_the_same_whatever_the_length_of_its_history(
    desk: Desk, admin_desk: Desk, requester: Any, django_assert_max_num_queries: Any
) -> None:
    short = make_ticket(requester, title="Short")
    long = make_ticket(requester, title="Long")
    _long_history(long, [make_user(f"helper{n}", "agent") for n in range(20)], requester)
    for client in (desk, admin_desk):
        client.get(page(short))  # the session and its CSRF cookie
        for ticket in (short, long):
            with django_assert_max_num_queries(TICKET_PAGE_BUDGET):
                response = client.get(page(ticket))
            assert response.status_code == 200
    assert page_text(desk.get(page(long))).count('class="card') == 22  # description, 20 notes, the requester's
