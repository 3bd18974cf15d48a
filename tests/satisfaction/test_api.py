"""GET and POST /api/v1/tickets/{id}/rating/: the requester rates once, whoever sees the ticket reads the rating,
everyone else gets the ticket's 404; refusals are JSON with a status that says why."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from itsm.models import Ticket, TicketRating
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def url(ticket: Ticket) -> str:
    return f"/api/v1/tickets/{ticket.pk}/rating/"


def test_the_requester_rates_and_gets_the_rating_back(
    as_requester: APIClient, requester: Any, resolved: Ticket
) -> None:
    response = as_requester.post(url(resolved), {"score": 5, "comment": "Fixed in minutes."}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert {key: body[key] for key in ("ticket", "score", "comment", "rated_by")} == {
        "ticket": resolved.pk,
        "score": 5,
        "comment": "Fixed in minutes.",
        "rated_by": requester.pk,
    }
    assert body["created_at"].endswith("Z")
    assert as_requester.get(url(resolved)).json() == body


def test_a_comment_is_optional(as_requester: APIClient, resolved: Ticket) -> None:
    response = as_requester.post(url(resolved), {"score": 3}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["comment"] == ""


@pytest.mark.parametrize("reader", ["as_agent", "as_admin", "as_requester"])
def test_staff_and_the_requester_read_the_rating(
    request: pytest.FixtureRequest, requester: Any, resolved: Ticket, reader: str
) -> None:
    TicketRating.objects.create(ticket=resolved, score=2, rated_by=requester, created_at=resolved.created_at)
    response = request.getfixturevalue(reader).get(url(resolved))
    assert response.status_code == 200
    assert response.json()["score"] == 2


def test_another_requester_gets_404_as_for_the_ticket(
    as_other_requester: APIClient, requester: Any, resolved: Ticket
) -> None:
    TicketRating.objects.create(ticket=resolved, score=2, rated_by=requester, created_at=resolved.created_at)
    assert as_other_requester.get(url(resolved)).status_code == 404
    response = as_other_requester.post(url(resolved), {"score": 1}, format="json")
    assert response.status_code == 404
    assert TicketRating.objects.get(ticket=resolved).score == 2


def test_a_ticket_not_rated_yet_reads_404_with_its_own_code(as_agent: APIClient, resolved: Ticket) -> None:
    response = as_agent.get(url(resolved))
    assert response.status_code == 404
    assert response.json() == {"detail": "This ticket has not been rated.", "code": "not_rated"}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"score": 0}, {"score"}),
        ({"score": 6}, {"score"}),
        ({"score": "five"}, {"score"}),
        ({"score": 4.5}, {"score"}),
        ({}, {"score"}),
        ({"score": 4, "comment": "x" * 2001}, {"comment"}),
        ({"score": 9, "comment": "Fine."}, {"score"}),
        ({"score": 4, "comment": 12}, {"comment"}),
    ],
)
def test_a_bad_score_or_comment_is_a_400_per_field(
    as_requester: APIClient, resolved: Ticket, body: dict[str, Any], fields: set[str]
) -> None:
    response = as_requester.post(url(resolved), body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == fields
    assert all(isinstance(messages, list) and messages for messages in errors.values())
    assert not TicketRating.objects.exists()


def test_an_agent_may_not_rate_for_the_requester(as_agent: APIClient, resolved: Ticket) -> None:
    response = as_agent.post(url(resolved), {"score": 5}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_second_rating_is_409_and_the_first_stays(as_requester: APIClient, resolved: Ticket) -> None:
    assert as_requester.post(url(resolved), {"score": 2}, format="json").status_code == 201
    response = as_requester.post(url(resolved), {"score": 5}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": "This ticket has already been rated.", "code": "conflict"}
    assert as_requester.get(url(resolved)).json()["score"] == 2


def test_an_open_ticket_is_409_not_ready(as_requester: APIClient, requester: Any) -> None:
    ticket = make_ticket(requester)
    response = as_requester.post(url(ticket), {"score": 5}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "not_ready"


def test_the_schema_documents_both_operations(as_agent: APIClient) -> None:
    schema = as_agent.get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/v1/tickets/{id}/rating/"]
    assert set(operations) == {"get", "post"}
    assert {"201", "400", "403", "404", "409"} <= set(operations["post"]["responses"])
    rating = schema["components"]["schemas"]["TicketRating"]["properties"]
    assert (rating["score"]["minimum"], rating["score"]["maximum"]) == (1, 5)
