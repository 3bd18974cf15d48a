"""Who sees a ticket's satisfaction rating: whoever sees the ticket (its requester, agents and admins)."""

from __future__ import annotations

from typing import Any

from itsm.models import Ticket, TicketRating
from itsm.queries.tickets import tickets_visible_to


def rating_visible_to(user: Any, ticket: Ticket) -> TicketRating | None:
    """The ticket's rating, or None when it has none or the user does not see the ticket."""
    return TicketRating.objects.filter(ticket=ticket, ticket__in=tickets_visible_to(user)).first()
