"""Ratings in the admin: listed for agents and admins, read-only (nobody adds, edits or deletes one there), and
summed up on the ticket's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from itsm.models import Ticket, TicketRating
from itsm.services.satisfaction import ticket_rate
from tests.conftest import page_text

pytestmark = pytest.mark.django_db

RATINGS = "/admin/itsm/ticketrating/"


@pytest.fixture
def rating(requester: Any, resolved: Ticket) -> TicketRating:
    return ticket_rate(ticket_id=resolved.pk, actor=requester, score=4, comment="Quick and friendly.")


def test_agents_list_the_ratings(agent: Any, rating: TicketRating) -> None:
    client = Client()
    client.force_login(agent)
    page = page_text(client.get(RATINGS))
    assert "Quick and friendly." in page
    assert "Printer jams" in page


def test_a_rating_is_read_only_in_the_admin(operator: Client, rating: TicketRating) -> None:
    page = operator.get(f"{RATINGS}{rating.pk}/change/")
    assert page.status_code == 200
    assert 'name="score"' not in page_text(page)
    assert 'name="_save"' not in page_text(page)
    assert operator.post(f"{RATINGS}{rating.pk}/change/", {"score": 1}).status_code == 403
    assert operator.get(f"{RATINGS}add/").status_code == 403
    assert operator.post(f"{RATINGS}{rating.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TicketRating.objects.get(pk=rating.pk).score == 4


def test_requesters_do_not_reach_the_ratings(requester: Any, rating: TicketRating) -> None:
    client = Client()
    client.force_login(requester)
    assert client.get(RATINGS).status_code in (302, 403)


def test_the_tickets_page_shows_its_rating(operator: Client, rating: TicketRating) -> None:
    page = page_text(operator.get(f"/admin/itsm/ticket/{rating.ticket_id}/change/"))
    assert "4/5 by rita: Quick and friendly." in page
