"""My tickets, a new ticket, a ticket's page, replies, confirming and reopening, files: what a requester sees and
may do in the portal, and that every read is theirs alone and every write all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from itsm.models import Attachment, Comment, Event, Service, Ticket
from itsm.services.attachments import Upload
from itsm.services.tickets import comment_create, ticket_transition
from tests.factories import make_ticket
from tests.portal.conftest import PNG, exe, png, stored_files, text, text_file

# --- My tickets ---------------------------------------------------------------------------------------------


def test_my_tickets_lists_mine_with_status_last_update_and_who_it_waits_on(
    rita: Client, requester: Any, other_requester: Any, agent: Any
):
    waiting = make_ticket(requester, title="Laptop will not charge")
    ticket_transition(ticket_id=waiting.pk, actor=agent, to="open")
    ticket_transition(ticket_id=waiting.pk, actor=agent, to="pending")
    solved = make_ticket(requester, title="Mailbox full")
    ticket_transition(ticket_id=solved.pk, actor=agent, to="resolved")
    make_ticket(requester, title="New monitor")
    make_ticket(other_requester, title="Oscar's secret ticket")

    response = rita.get("/portal/")

    page = text(response)
    assert response.status_code == 200
    assert "Laptop will not charge" in page
    assert "Mailbox full" in page
    assert "New monitor" in page
    assert "Oscar" not in page
    rows = {row["ticket"].title: row for row in response.context["rows"]}
    assert str(rows["Laptop will not charge"]["waiting_on"]) == "you"
    assert str(rows["Mailbox full"]["waiting_on"]) == "your confirmation"
    assert str(rows["New monitor"]["waiting_on"]) == "us"
    assert str(rows["Laptop will not charge"]["status_label"]) == "Waiting for you"
    assert "Last update" in page


def test_the_filter_shows_open_by_default_then_closed_or_all(rita: Client, requester: Any, agent: Any):
    make_ticket(requester, title="Still open")
    done = make_ticket(requester, title="Long done")
    ticket_transition(ticket_id=done.pk, actor=agent, to="closed")

    assert [r["ticket"].title for r in rita.get("/portal/").context["rows"]] == ["Still open"]
    assert [r["ticket"].title for r in rita.get("/portal/?state=closed").context["rows"]] == ["Long done"]
    assert [r["ticket"].title for r in rita.get("/portal/?state=all").context["rows"]] == ["Long done", "Still open"]
    # An unknown state is the default, not an error.
    assert [r["ticket"].title for r in rita.get("/portal/?state=bogus").context["rows"]] == ["Still open"]
    ticket_transition(ticket_id=rita.get("/portal/").context["rows"][0]["ticket"].pk, actor=agent, to="closed")
    assert "You have no open tickets." in text(rita.get("/portal/"))


def test_search_finds_my_tickets_by_title_and_description_only(rita: Client, requester: Any, other_requester: Any):
    make_ticket(requester, title="Printer jams", description="The tray on floor 3.")
    make_ticket(requester, title="Monitor flickers", description="Also the printer cable is loose.")
    make_ticket(requester, title="Password expired")
    make_ticket(other_requester, title="Printer is mine", description="printer printer")

    found = rita.get("/portal/", {"state": "all", "q": "printer"}).context["rows"]
    assert sorted(r["ticket"].title for r in found) == ["Monitor flickers", "Printer jams"]
    by_description = rita.get("/portal/", {"state": "all", "q": "tray"}).context["rows"]
    assert [r["ticket"].title for r in by_description] == ["Printer jams"]
    assert "None of your tickets match" in text(rita.get("/portal/", {"q": "elephant"}))


def test_a_search_too_long_is_a_message_beside_the_field(rita: Client, requester: Any):
    make_ticket(requester, title="Printer jams")

    response = rita.get("/portal/", {"q": "x" * 201})

    assert response.status_code == 200
    assert 'id="id_q_error"' in text(response)
    assert "at most 200 characters" in text(response)


def test_my_tickets_is_paginated_and_the_filter_stays_on_every_page(rita: Client, requester: Any, settings: Any):
    settings.ITSM_PAGE_SIZE = 3
    for number in range(7):
        make_ticket(requester, title=f"Request {number}")

    first = rita.get("/portal/", {"state": "open"})
    third = rita.get("/portal/", {"state": "open", "page": "3"})
    beyond = rita.get("/portal/", {"state": "open", "page": "99"})

    assert [r["ticket"].title for r in first.context["rows"]] == ["Request 6", "Request 5", "Request 4"]
    assert "Page 1 of 3" in text(first)
    assert "?state=open&amp;page=2" in text(first)
    assert [r["ticket"].title for r in third.context["rows"]] == ["Request 0"]
    assert [r["ticket"].title for r in beyond.context["rows"]] == ["Request 0"]  # the last page, not an error


@pytest.mark.parametrize("tickets", [1, 40])
def test_my_tickets_costs_the_same_queries_however_many_tickets_and_comments(
    rita: Client, requester: Any, agent: Any, service: Service, tickets: int, django_assert_max_num_queries: Any
):
    for number in range(tickets):
        ticket = make_ticket(requester, title=f"Request {number}", service=service)
        comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
    # session, user, role, count, page; with the search the same.
    with django_assert_max_num_queries(5):
        assert rita.get("/portal/", {"state": "all"}).status_code == 200
    with django_assert_max_num_queries(5):
        assert rita.get("/portal/", {"state": "all", "q": "request"}).status_code == 200


# --- A ticket's page ----------------------------------------------------------------------------------------


def test_a_ticket_shows_its_public_conversation_in_order_and_never_an_internal_note(
    rita: Client, ticket: Ticket, requester: Any, agent: Any
):
    comment_create(ticket_id=ticket.pk, author=agent, body="Which VPN client version do you use?")
    note = comment_create(
        ticket_id=ticket.pk, author=agent, body="INTERNAL: the gateway logs show DNS timeouts", internal=True
    )
    comment_create(
        ticket_id=ticket.pk,
        author=agent,
        body="INTERNAL: see attached capture",
        internal=True,
        uploads=[Upload("capture-internal.txt", "text/plain", b"secret capture")],
    )
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending", note="Waiting for the version number.")
    comment_create(ticket_id=ticket.pk, author=requester, body="Version 5.2.", uploads=[Upload("v.png", "", PNG)])

    response = rita.get(f"/portal/tickets/{ticket.pk}/")

    page = text(response)
    assert response.status_code == 200
    assert "INTERNAL" not in page
    assert "capture-internal.txt" not in page
    assert f"comment-{note.pk}" not in page
    order = [
        page.index("Which VPN client version do you use?"),
        page.index("Waiting for the version number."),
        page.index("Version 5.2."),
    ]
    assert order == sorted(order)
    assert "v.png" in page
    assert "Waiting for you" in page
    assert "service desk" in page  # the agent's reply says who wrote it


def test_another_requesters_ticket_is_a_404_page_and_its_files_too(
    signed_in: Callable[..., Client], other_requester: Any, ticket: Ticket
):
    comment_create(ticket_id=ticket.pk, author=ticket.requester, body="Log", uploads=[Upload("a.log", "", b"x")])
    oscar = signed_in(other_requester)
    attachment = Attachment.objects.get(ticket=ticket)

    for url in (f"/portal/tickets/{ticket.pk}/", f"/portal/files/{attachment.pk}/", "/portal/tickets/999999/"):
        response = oscar.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"].startswith("text/html")
        assert "Page not found" in text(response)
    for url in (f"/portal/tickets/{ticket.pk}/reply/", f"/portal/tickets/{ticket.pk}/status/"):
        assert oscar.post(url, {"body": "hi", "to": "closed"}).status_code == 404
    assert not Comment.objects.filter(author=other_requester).exists()


def test_a_ticket_page_costs_the_same_queries_however_long_its_conversation(
    rita: Client, ticket: Ticket, requester: Any, agent: Any, django_assert_max_num_queries: Any
):
    def converse(rounds: int) -> None:
        for number in range(rounds):
            comment_create(ticket_id=ticket.pk, author=agent, body=f"Question {number}")
            comment_create(ticket_id=ticket.pk, author=agent, body=f"Note {number}", internal=True)
            comment_create(
                ticket_id=ticket.pk,
                author=requester,
                body=f"Answer {number}",
                uploads=[Upload(f"{number}.log", "", b"x")],
            )

    converse(1)
    with django_assert_max_num_queries(10) as short:
        assert rita.get(f"/portal/tickets/{ticket.pk}/").status_code == 200
    converse(15)
    with django_assert_max_num_queries(10) as long:
        assert rita.get(f"/portal/tickets/{ticket.pk}/").status_code == 200
    assert len(long.captured_queries) == len(short.captured_queries)


# --- A new ticket -------------------------------------------------------------------------------------------


def test_the_new_ticket_form_says_which_service_level_applies(rita: Client, service: Service):
    page = text(rita.get("/portal/tickets/new/"))

    assert "A new ticket gets a first answer within <strong>4 hours</strong>" in page
    assert "is resolved within <strong>3 days</strong>" in page
    assert "Default" in page
    assert "15 minutes" in page  # the critical row of the table
    assert ">VPN</option>" in page


def test_a_requester_opens_a_ticket_with_files_and_is_sent_to_it(
    rita: Client, requester: Any, service: Service, media: Path
):
    response = rita.post(
        "/portal/tickets/new/",
        {
            "title": "Cannot reach the wiki",
            "description": "Error 502 since 9:00.",
            "service": service.pk,
            "attachments": [png(), text_file()],
        },
    )

    ticket = Ticket.objects.get(requester=requester)
    assert response.status_code == 302
    assert response["Location"] == f"/portal/tickets/{ticket.pk}/"
    assert (ticket.title, ticket.description, ticket.service) == (
        "Cannot reach the wiki",
        "Error 502 since 9:00.",
        service,
    )
    assert sorted(ticket.attachments.values_list("filename", flat=True)) == ["screenshot.png", "vpn.log"]
    assert len(stored_files(media)) == 2
    followed = rita.get(response["Location"])
    assert f"Your ticket #{ticket.pk} is open" in text(followed)
    assert "screenshot.png" in text(followed)


def test_a_refused_file_is_a_message_beside_the_field_and_nothing_is_written(rita: Client, requester: Any, media: Path):
    response = rita.post("/portal/tickets/new/", {"title": "Here is the fix", "attachments": [png(), exe()]})

    page = text(response)
    assert response.status_code == 200
    assert 'id="id_attachments_error"' in page
    assert "fix.exe: This file is application/x-msdownload (by its content)" in page
    assert 'value="Here is the fix"' in page  # what was typed is kept
    assert not Ticket.objects.exists()
    assert not Event.objects.exists()
    assert stored_files(media) == []


def test_when_storing_a_file_fails_midway_the_ticket_and_the_files_stored_are_gone(
    rita: Client, requester: Any, media: Path, monkeypatch: pytest.MonkeyPatch
):
    from itsm.services import attachments

    real = attachments._record
    calls = []

    def second_fails(**kwargs: Any) -> Any:
        calls.append(kwargs["checked"].filename)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(attachments, "_record", second_fails)
    with pytest.raises(OSError, match="disk full"):
        rita.post("/portal/tickets/new/", {"title": "Two files", "attachments": [png(), text_file()]})

    assert calls == ["screenshot.png", "vpn.log"]
    assert not Ticket.objects.exists()
    assert not Attachment.objects.exists()
    assert stored_files(media) == []


def test_bad_input_on_a_new_ticket_is_a_message_beside_each_field(rita: Client):
    response = rita.post(
        "/portal/tickets/new/",
        {"title": "x" * 201, "service": "999999", "attachments": [png(str(n)) for n in range(6)]},
    )

    errors = response.context["form"].errors
    assert response.status_code == 200
    assert errors["title"] == ["Ensure this value has at most 200 characters (it has 201)."]
    assert errors["service"] == ["Select a valid choice. That choice is not one of the available choices."]
    assert errors["attachments"] == ["Attach at most 5 files at once."]
    assert 'aria-invalid="true"' in text(response)
    assert not Ticket.objects.exists()
    assert "This field is required." in text(rita.post("/portal/tickets/new/", {"title": "  "}))


# --- Replies, confirmation, reopening ----------------------------------------------------------------------


def test_a_reply_with_files_lands_on_the_ticket_and_the_page_shows_it(rita: Client, ticket: Ticket, requester: Any):
    response = rita.post(
        f"/portal/tickets/{ticket.pk}/reply/", {"body": "Still dropping.", "attachments": [text_file()]}
    )

    comment = Comment.objects.get(ticket=ticket)
    assert response.status_code == 302
    assert response["Location"] == f"/portal/tickets/{ticket.pk}/#comment-{comment.pk}"
    assert (comment.author, comment.body, comment.internal) == (requester, "Still dropping.", False)
    assert list(comment.attachments.values_list("filename", flat=True)) == ["vpn.log"]
    assert "Still dropping." in text(rita.get(f"/portal/tickets/{ticket.pk}/"))


def test_an_empty_reply_or_a_refused_file_is_a_message_and_nothing_is_written(
    rita: Client, ticket: Ticket, media: Path
):
    empty = rita.post(f"/portal/tickets/{ticket.pk}/reply/", {"body": ""})
    refused = rita.post(f"/portal/tickets/{ticket.pk}/reply/", {"body": "Try this", "attachments": [exe()]})

    assert empty.context["reply_form"].errors == {"body": ["This field is required."]}
    assert "fix.exe: This file is" in text(refused)
    assert 'id="id_attachments_error"' in text(refused)
    assert not Comment.objects.exists()
    assert stored_files(media) == []


def test_a_closed_ticket_takes_no_reply(rita: Client, ticket: Ticket, agent: Any):
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="closed")

    page = text(rita.get(f"/portal/tickets/{ticket.pk}/"))
    response = rita.post(f"/portal/tickets/{ticket.pk}/reply/", {"body": "One more thing"})

    assert "Send reply" not in page
    assert "This ticket is closed." in page
    assert "This ticket is closed. Open a new ticket to follow it up." in text(response)
    assert not Comment.objects.exists()


def test_only_a_resolved_ticket_shows_the_buttons_and_they_confirm_or_reopen(rita: Client, ticket: Ticket, agent: Any):
    assert "Is your problem solved?" not in text(rita.get(f"/portal/tickets/{ticket.pk}/"))
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    page = text(rita.get(f"/portal/tickets/{ticket.pk}/"))
    assert "Is your problem solved?" in page
    assert 'value="closed"' in page
    assert 'value="open"' in page

    reopened = rita.post(f"/portal/tickets/{ticket.pk}/status/", {"to": "open", "note": "It dropped again."})
    ticket.refresh_from_db()
    assert reopened.status_code == 302
    assert ticket.status == "open"
    assert Event.objects.filter(ticket=ticket, field="status", new_value="open", note="It dropped again.").exists()

    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    confirmed = rita.post(f"/portal/tickets/{ticket.pk}/status/", {"to": "closed"})
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert "The ticket is closed." in text(rita.get(confirmed["Location"]))


@pytest.mark.parametrize("to", ["open", "closed", "resolved", "in_progress", "pending", "nonsense"])
def test_a_move_the_requester_may_not_make_changes_nothing(rita: Client, ticket: Ticket, agent: Any, to: str):
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="in_progress")

    response = rita.post(f"/portal/tickets/{ticket.pk}/status/", {"to": to})

    ticket.refresh_from_db()
    assert response.status_code == 302
    assert ticket.status == "in_progress"
    assert "has changed in the meantime" in text(rita.get(response["Location"]))


# --- Files --------------------------------------------------------------------------------------------------


def test_a_file_downloads_as_an_attachment_never_rendered(rita: Client, ticket: Ticket, requester: Any):
    comment = comment_create(
        ticket_id=ticket.pk, author=requester, body="Screenshot", uploads=[Upload("screen.png", "image/png", PNG)]
    )
    attachment = comment.attachments.get()

    response = rita.get(f"/portal/files/{attachment.pk}/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG  # type: ignore[attr-defined]
    assert response["Content-Disposition"] == 'attachment; filename="screen.png"'
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_the_file_of_an_internal_note_is_a_404_even_on_my_own_ticket(rita: Client, ticket: Ticket, agent: Any):
    note = comment_create(
        ticket_id=ticket.pk, author=agent, body="x", internal=True, uploads=[Upload("trace.txt", "", b"secret")]
    )

    response = rita.get(f"/portal/files/{note.attachments.get().pk}/")

    assert response.status_code == 404
    assert b"secret" not in response.content


@pytest.mark.parametrize("status", ["new", "open"])
def test_the_portal_does_not_withdraw_a_new_or_open_ticket_even_when_asked(
    rita: Client, ticket: Ticket, agent: Any, status: str
):
    if status == "open":
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")

    rita.post(f"/portal/tickets/{ticket.pk}/status/", {"to": "closed"})

    ticket.refresh_from_db()
    assert ticket.status == status


def test_an_empty_new_ticket_form_says_what_is_missing(rita: Client):
    response = rita.post("/portal/tickets/new/", {})

    assert response.context["form"].errors == {"title": ["This field is required."]}
    assert not Ticket.objects.exists()
