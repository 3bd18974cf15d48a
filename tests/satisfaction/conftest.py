"""Helpers of the satisfaction tests: a ticket of the requester's that an agent resolved, and the token of a rating
link."""

from __future__ import annotations

from typing import Any

import pytest

from itsm.models import Ticket
from itsm.services.tickets import ticket_transition
from tests.factories import make_ticket


def resolved_ticket(requester: Any, agent: Any, **fields: Any) -> Ticket:
    ticket = make_ticket(requester, **fields)
    return ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")


@pytest.fixture
def resolved(requester: Any, agent: Any) -> Ticket:
    return resolved_ticket(requester, agent, title="Printer jams")


def token_of(link: str) -> str:
    """The token of a rating link, `{ITSM_PUBLIC_URL}/portal/rate/<token>/`."""
    return link.rstrip("/").rsplit("/", 1)[-1]
