"""Who sees which attachment: exactly who sees what it is attached to."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from itsm.models import Attachment, Ticket
from itsm.queries.tickets import tickets_visible_to
from itsm.roles import is_staff_role


def attachments_visible_to(user: Any, ticket: Ticket | None = None) -> QuerySet[Attachment]:
    """The attachments of the tickets `user` sees (of `ticket` alone if given); a requester never sees those of an
    internal note, as they never see the note. Agents and admins see all."""
    attachments = Attachment.objects.filter(ticket__in=tickets_visible_to(user))
    if ticket is not None:
        attachments = attachments.filter(ticket=ticket)
    if not is_staff_role(user):
        attachments = attachments.filter(Q(comment__isnull=True) | Q(comment__internal=False))
    return attachments
