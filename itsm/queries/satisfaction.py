"""Who sees a ticket's satisfaction rating: whoever sees the ticket (its requester, agents and admins)."""

from __future__ import annotations

from typing import Any

from itsm.models import Ticket, TicketRating
from itsm.queries.tickets import tickets_visible_to


def rating_visible_to(user: Any, ticket: Ticket) -> TicketRating | None:
    """The ticket's rating, or None when it has none or the user does not see the ticket."""
    return TicketRating.objects.filter(ticket=ticket, ticket__in=tickets_visible_to(user)).first()


def rated_ticket(*, ticket_id: int, requester_id: int) -> Ticket | None:
    """The ticket a rating link names, with its rating joined (None while unrated, read as `ticket_rating`), when
    the link's requester is still its requester; else None. For the link's page, which no sign-in guards: the
    signed link is the credential."""
    return Ticket.objects.filter(pk=ticket_id, requester_id=requester_id).select_related("rating").first()


def ticket_rating(ticket: Ticket) -> TicketRating | None:
    """The rating joined by select_related("rating") (or read now), None while the ticket is unrated."""
    try:
        return ticket.rating
    except TicketRating.DoesNotExist:
        return None
