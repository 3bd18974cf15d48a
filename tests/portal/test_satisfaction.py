"""Satisfaction in the portal: a resolved or closed ticket's page asks for a rating once, and the one-click link of
the resolution e-mail opens a page that confirms before it rates (a mail scanner following the link rates nothing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from itsm.models import Event, Ticket, TicketRating
from itsm.services.satisfaction import rating_link
from itsm.services.tickets import ticket_transition
from tests.factories import make_ticket
from tests.portal.conftest import text


@pytest.fixture
def resolved(ticket: Ticket, agent: Any) -> Ticket:
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    return ticket


def link_path(ticket: Ticket, score: int, settings: Any) -> str:
    """The path of the e-mail's link, on the test server."""
    return rating_link(ticket, score).removeprefix(settings.ITSM_PUBLIC_URL)


# --- On the ticket's page -----------------------------------------------------------------------------------


def test_only_a_resolved_or_closed_ticket_asks_for_a_rating(rita: Client, ticket: Ticket, agent: Any):
    assert "Rate our help" not in text(rita.get(f"/portal/tickets/{ticket.pk}/"))

    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    page = text(rita.get(f"/portal/tickets/{ticket.pk}/"))
    assert "Rate our help" in page
    for score in range(1, 6):
        assert f'name="score" value="{score}"' in page

    ticket_transition(ticket_id=ticket.pk, actor=agent, to="closed")
    assert "Rate our help" in text(rita.get(f"/portal/tickets/{ticket.pk}/"))


def test_a_rating_is_given_once_and_the_page_shows_it_instead_of_the_form(
    rita: Client, resolved: Ticket, requester: Any
):
    response = rita.post(f"/portal/tickets/{resolved.pk}/rating/", {"score": "4", "comment": "Quick and friendly."})

    assert response.status_code == 302
    page = text(rita.get(response["Location"]))
    assert "Thank you for your rating." in page
    assert "You rated this ticket 4 of 5." in page
    assert "Quick and friendly." in page
    assert 'id="rating-form"' not in page
    rating = TicketRating.objects.get()
    assert (rating.ticket_id, rating.score, rating.comment, rating.rated_by) == (
        resolved.pk,
        4,
        "Quick and friendly.",
        requester,
    )
    assert Event.objects.filter(ticket=resolved, kind=Event.Kind.RATING, new_value="4").count() == 1

    again = rita.post(f"/portal/tickets/{resolved.pk}/rating/", {"score": "1"})

    assert again.status_code == 302
    assert "has changed in the meantime" in text(rita.get(again["Location"]))
    assert list(TicketRating.objects.values_list("score", flat=True)) == [4]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "score", "Choose a score from 1 to 5."),
        ({"score": "6"}, "score", "Select a valid choice. 6 is not one of the available choices."),
        ({"score": "five"}, "score", "Select a valid choice. five is not one of the available choices."),
        ({"score": "5", "comment": "x" * 2001}, "comment", "Ensure this value has at most 2000 characters"),
    ],
)
def test_a_bad_rating_is_a_message_beside_its_field_and_nothing_is_written(
    rita: Client, resolved: Ticket, data: dict[str, str], field: str, message: str
):
    response = rita.post(f"/portal/tickets/{resolved.pk}/rating/", data)

    page = text(response)
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in page
    assert message in page
    assert "Please correct the fields marked below." in page
    assert not TicketRating.objects.exists()


def test_an_open_ticket_or_another_requesters_ticket_takes_no_rating(
    rita: Client, ticket: Ticket, other_requester: Any, agent: Any
):
    opened = rita.post(f"/portal/tickets/{ticket.pk}/rating/", {"score": "5"})
    theirs = make_ticket(other_requester, title="Not yours")
    ticket_transition(ticket_id=theirs.pk, actor=agent, to="resolved")
    foreign = rita.post(f"/portal/tickets/{theirs.pk}/rating/", {"score": "5"})

    assert opened.status_code == 302
    assert "has changed in the meantime" in text(rita.get(opened["Location"]))
    assert foreign.status_code == 404
    assert not TicketRating.objects.exists()


def test_a_rated_ticket_page_costs_no_more_queries_than_an_unrated_one(rita: Client, resolved: Ticket):
    rita.get(f"/portal/tickets/{resolved.pk}/")
    with CaptureQueriesContext(connection) as unrated:
        rita.get(f"/portal/tickets/{resolved.pk}/")
    rita.post(f"/portal/tickets/{resolved.pk}/rating/", {"score": "3"})
    with CaptureQueriesContext(connection) as rated:
        rita.get(f"/portal/tickets/{resolved.pk}/")

    assert len(rated.captured_queries) == len(unrated.captured_queries)


# --- The e-mail's one-click link ----------------------------------------------------------------------------


def test_opening_the_link_asks_to_confirm_and_rates_nothing(client: Client, resolved: Ticket, settings: Any):
    response = client.get(link_path(resolved, 5, settings))

    page = text(response)
    assert response.status_code == 200
    assert f"Ticket #{resolved.pk}" in page
    assert resolved.title in page
    assert "Your score: <strong>5, excellent</strong>." in page
    assert 'id="rating-form"' in page
    assert not TicketRating.objects.exists()


def test_confirming_the_link_rates_with_its_score_without_signing_in(
    client: Client, resolved: Ticket, requester: Any, settings: Any
):
    path = link_path(resolved, 2, settings)

    response = client.post(path, {"comment": "Took a week."})

    page = text(response)
    assert response.status_code == 200
    assert "Thank you for your rating." in page
    assert "You rated this ticket 2 of 5." in page
    rating = TicketRating.objects.get()
    assert (rating.score, rating.comment, rating.rated_by) == (2, "Took a week.", requester)

    second = client.post(link_path(resolved, 5, settings), {"comment": "Changed my mind."})
    later = text(client.get(path))

    assert second.status_code == 200
    assert "Thank you" not in text(second)
    assert "You rated this ticket 2 of 5." in text(second)
    assert "You rated this ticket 2 of 5." in later
    assert 'id="rating-form"' not in later
    assert list(TicketRating.objects.values_list("score", flat=True)) == [2]


def test_a_too_long_comment_on_the_link_page_is_a_message_beside_it(client: Client, resolved: Ticket, settings: Any):
    response = client.post(link_path(resolved, 4, settings), {"comment": "x" * 2001})

    assert response.status_code == 400
    assert 'id="id_comment_error"' in text(response)
    assert not TicketRating.objects.exists()


def test_a_tampered_link_is_a_page_that_says_so(client: Client, resolved: Ticket, settings: Any):
    path = link_path(resolved, 5, settings)
    token = path.split("/")[-2]
    tampered = path.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))

    for response in (client.get(tampered), client.post(tampered, {}), client.get("/portal/rate/nonsense/")):
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        assert "This rating link is not valid: rate the ticket on its page instead." in text(response)
    assert not TicketRating.objects.exists()


def test_an_expired_link_is_a_page_that_says_so(client: Client, resolved: Ticket, settings: Any):
    path = link_path(resolved, 5, settings)

    with time_machine.travel(timezone.now() + timedelta(days=settings.ITSM_RATING_LINK_DAYS, hours=1)):
        response = client.post(path, {})

    assert response.status_code == 400
    assert "This rating link has expired: rate the ticket on its page instead." in text(response)
    assert not TicketRating.objects.exists()


def test_a_link_of_a_ticket_reopened_since_the_mail_says_it_cannot_be_rated_now(
    client: Client, resolved: Ticket, agent: Any, settings: Any
):
    path = link_path(resolved, 5, settings)
    ticket_transition(ticket_id=resolved.pk, actor=agent, to="open")

    page, posted = client.get(path), client.post(path, {})

    for response in (page, posted):
        assert response.status_code == 200
        assert "This ticket is open again, so it cannot be rated now." in text(response)
        assert 'id="rating-form"' not in text(response)
    assert not TicketRating.objects.exists()


def test_a_link_of_a_ticket_that_changed_requester_is_refused(
    client: Client, resolved: Ticket, other_requester: Any, settings: Any
):
    path = link_path(resolved, 5, settings)
    Ticket.objects.filter(pk=resolved.pk).update(requester=other_requester)

    response = client.post(path, {})

    assert response.status_code == 400
    assert "This rating link is not valid" in text(response)
    assert not TicketRating.objects.exists()


def test_the_link_page_reads_a_bounded_number_of_queries(
    client: Client, resolved: Ticket, settings: Any, django_assert_max_num_queries: Any
):
    path = link_path(resolved, 5, settings)
    with django_assert_max_num_queries(LINK_PAGE_BUDGET):
        assert client.get(path).status_code == 200
    with django_assert_max_num_queries(LINK_CONFIRM_BUDGET):
        assert client.post(path, {}).status_code == 200


# Reading the link's ticket with its rating; confirming adds the rating's write (lock, checks, insert, event) and
# the page read again, and the rating's audit row (docs/security.md#audit-trail).
LINK_PAGE_BUDGET = 1
LINK_CONFIRM_BUDGET = 9
