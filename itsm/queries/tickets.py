"""Who sees which ticket, comment and timeline entry."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from itsm.models import Comment, Event, Ticket
from itsm.roles import is_staff_role

# Timeline entries of internal notes and of the files attached to them.
INTERNAL_EVENT_FIELDS = ("internal_comment", "internal_attachment")


def tickets_visible_to(user: Any) -> QuerySet[Ticket]:
    """Agents and admins see every ticket; a requester sees only the tickets they requested."""
    tickets = Ticket.objects.all()
    if not getattr(user, "is_authenticated", False):
        return tickets.none()
    if is_staff_role(user):
        return tickets
    return tickets.filter(requester=user)


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
