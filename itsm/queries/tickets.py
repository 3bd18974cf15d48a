"""Who sees which ticket, comment and timeline entry."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from itsm.models import Comment, Event, Ticket
from itsm.roles import is_staff_role

# Timeline entries of internal notes and of the files attached to them.
INTERNAL_EVENT_FIELDS = ("internal_comment", "internal_attachment")
# A stored generated column (migration 0008) holding to_tsvector('english', title || ' ' || description), with
# the GIN index idx_ticket_search. Reading it instead of recomputing the expression for each row is what keeps a
# search newest-first over a million tickets in milliseconds (docs/benchmarks.md).
TICKET_SEARCH_DOCUMENT = '"itsm_ticket"."search_vector"'


def tickets_visible_to(user: Any) -> QuerySet[Ticket]:
    """Agents and admins see every ticket; a requester sees only the tickets they requested."""
    tickets = Ticket.objects.all()
    if not getattr(user, "is_authenticated", False):
        return tickets.none()
    if is_staff_role(user):
        return tickets
    return tickets.filter(requester=user)


def tickets_requested_by(user: Any) -> QuerySet[Ticket]:
    """The portal's "my tickets": of the tickets `user` sees, those they requested (an agent's own requests too)."""
    return tickets_visible_to(user).filter(requester_id=getattr(user, "pk", None))


def tickets_matching(tickets: QuerySet[Ticket], terms: str, *, among_few: bool = False) -> QuerySet[Ticket]:
    """`tickets` whose title or description match `terms`: PostgreSQL full-text search in web-search syntax
    (quoted phrases, OR, -word); a plain substring match on SQLite. Empty terms match every ticket.

    `among_few` for a set that an index narrows to a few hundred rows (one requester's tickets): each row's stored
    vector is compared, and the GIN index is left alone, whose cost grows with how common a term is among all
    tickets (0.25 ms for any term against 0.04 to 4 ms, 254 tickets of 1,000,000, docs/benchmarks.md)."""
    terms = terms.strip()
    if not terms:
        return tickets
    if connection.vendor == "postgresql":
        # Concatenating an empty vector changes nothing but the expression, which the index no longer matches.
        document = f"({TICKET_SEARCH_DOCUMENT} || ''::tsvector)" if among_few else TICKET_SEARCH_DOCUMENT
        matches = RawSQL(  # noqa: S611 (the terms are a bound parameter)
            f"{document} @@ websearch_to_tsquery('english'::regconfig, %s)",
            (terms,),
            output_field=BooleanField(),
        )
        return tickets.filter(matches)
    return tickets.filter(Q(title__icontains=terms) | Q(description__icontains=terms))


def comments_visible_to(user: Any, ticket: Ticket) -> QuerySet[Comment]:
    comments = Comment.objects.filter(ticket=ticket).select_related("author")
    if is_staff_role(user):
        return comments
    return comments.filter(internal=False)


def events_visible_to(user: Any, ticket: Ticket) -> QuerySet[Event]:
    """A requester's timeline leaves out internal notes and their attachments."""
    events = Event.objects.filter(ticket=ticket).select_related("actor")
    if is_staff_role(user):
        return events
    return events.exclude(field__in=INTERNAL_EVENT_FIELDS)
