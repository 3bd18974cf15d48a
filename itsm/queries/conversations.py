"""A ticket's public conversation as the portal shows it to its requester: the description, public comments and
status changes in time order, each with its files. Internal notes, their timeline entries and their files are
left out whoever asks, so the portal's page is the same for a requester and for an agent who requested a ticket."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from itsm.models import Attachment, Event, Ticket
from itsm.queries.attachments import attachments_visible_to
from itsm.queries.tickets import comments_visible_to, events_visible_to, tickets_requested_by
from itsm.roles import is_staff_role

PUBLIC_FILES = Q(comment__isnull=True) | Q(comment__internal=False)


@dataclass
class Entry:
    """One item of the conversation: a comment (with its files) or a status change (with its note)."""

    at: datetime
    kind: str  # "comment" or "status"
    author: Any
    staff: bool  # written by an agent or an admin: "service desk"
    body: str = ""
    old_status: str = ""
    new_status: str = ""
    files: list[Attachment] = field(default_factory=list)
    pk: int | None = None  # the comment's


@dataclass
class Conversation:
    entries: list[Entry]
    ticket_files: list[Attachment]  # the files of the ticket itself (sent with the request), not of a comment


def ticket_conversation(user: Any, ticket: Ticket) -> Conversation:
    """In five queries whatever the length: public comments with their authors and the authors' roles, status
    changes with their actors and roles, and the public files. Starts from the visibility rules of
    itsm.queries.tickets and itsm.queries.attachments."""
    comments = list(
        comments_visible_to(user, ticket)
        .filter(internal=False)
        .prefetch_related("author__groups")  # the author's role, read by is_staff_role without a query each
        .order_by("created_at", "id")
    )
    changes = list(
        events_visible_to(user, ticket)
        .filter(kind=Event.Kind.TRANSITION, field="status")
        .prefetch_related("actor__groups")
        .order_by("created_at", "id")
    )
    files: dict[int | None, list[Attachment]] = {}
    for attachment in attachments_visible_to(user, ticket).filter(PUBLIC_FILES).order_by("created_at", "id"):
        files.setdefault(attachment.comment_id, []).append(attachment)
    entries = [
        Entry(
            at=c.created_at,
            kind="comment",
            author=c.author,
            staff=is_staff_role(c.author),
            body=c.body,
            files=files.get(c.pk, []),
            pk=c.pk,
        )
        for c in comments
    ]
    entries += [
        Entry(
            at=e.created_at,
            kind="status",
            author=e.actor,
            staff=e.actor is not None and is_staff_role(e.actor),
            body=e.note,
            old_status=e.old_value,
            new_status=e.new_value,
        )
        for e in changes
    ]
    # A reply and the status change an agent made with it share a moment: the reply reads first.
    entries.sort(key=lambda entry: (entry.at, entry.kind != "comment"))
    return Conversation(entries=entries, ticket_files=files.get(None, []))


def conversation_files(user: Any) -> QuerySet[Attachment]:
    """The files the portal lets `user` download: those of their own tickets' public conversations."""
    return attachments_visible_to(user).filter(PUBLIC_FILES, ticket__in=tickets_requested_by(user))
