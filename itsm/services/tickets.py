"""Every write to a ticket: creation, edits, status changes and comments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from itsm import metrics
from itsm.audit import remember
from itsm.exceptions import InvalidInput, NotPermitted
from itsm.lifecycles import TICKET_REQUESTER_TARGETS, TICKET_TRANSITIONS, check_transition
from itsm.models import Comment, Event, Service, Ticket
from itsm.roles import is_admin, is_staff_role
from itsm.services.attachments import Upload, attachment_files_forget, attachments_staged
from itsm.services.events import event_record, event_record_change
from itsm.services.sla import (
    calendar_from,
    sla_policy_for,
    sla_status_at,
    ticket_sla_refresh,
    ticket_sla_reselect,
    ticket_sla_times,
)
from itsm.services.ticket_notifications import (
    ticket_notify_assigned,
    ticket_notify_commented,
    ticket_notify_created,
    ticket_notify_moved,
)
from itsm.services.versioned import version_check

# Fields a requester may edit on their own ticket, and while it is in one of these statuses.
REQUESTER_EDITABLE_FIELDS = frozenset({"title", "description"})
REQUESTER_EDITABLE_STATUSES = frozenset({Ticket.Status.NEW, Ticket.Status.OPEN})
AGENT_EDITABLE_FIELDS = frozenset({"title", "description", "priority", "category", "service", "assignee"})
# Changing any of these may put the ticket on another SLA policy, and moves its due times (the service also decides
# the maintenance pauses).
SLA_FIELDS = frozenset({"priority", "service"})
# The note on the move back to the agents when the requester answers a ticket that waited on them.
REQUESTER_ANSWERED = "The requester replied."


def ticket_create(
    *,
    requester: Any,
    title: str,
    description: str = "",
    priority: str = Ticket.Priority.MEDIUM,
    category: str = "",
    service: Service | None = None,
    assignee: Any = None,
    actor: Any = None,
    uploads: Sequence[Upload] = (),
) -> Ticket:
    """Open a ticket for `requester` (agents may open one on someone's behalf) and start its SLA clocks on the
    policy its service and priority select. Files in `uploads` are attached all or none: one refused file
    (InvalidInput, "files") and no ticket is written."""
    now = timezone.now()
    with attachments_staged(uploads=uploads) as staged, transaction.atomic():
        ticket = Ticket(
            title=title,
            description=description,
            priority=priority,
            category=category,
            service=service,
            requester=requester,
            assignee=assignee,
            created_at=now,
            updated_at=now,
        )
        # The due times go into the INSERT: a new ticket's status history is its creation alone, so there is
        # no history to read and no second write (docs/benchmarks.md, ticket create).
        policy = sla_policy_for(service=service, priority=priority)
        ticket.sla_policy = policy
        times = ticket_sla_times(
            ticket=ticket, policy=policy, calendar=calendar_from(policy.calendar), changes=[(now, Ticket.Status.NEW)]
        )
        ticket.response_due_at, ticket.resolution_due_at = times.response_due_at, times.resolution_due_at
        ticket.sla_at_risk_at = times.at_risk_at
        ticket.save()
        event_record(ticket=ticket, actor=actor or requester, kind=Event.Kind.CREATED, new=ticket.title, at=now)
        if sla_status_at(ticket, now) != ticket.sla_status:
            # Only with a target of zero minutes: the full refresh records the SLA state change as an event.
            ticket.save(update_fields=ticket_sla_refresh(ticket=ticket, policy=policy, now=now))
        if staged.record(ticket=ticket, uploaded_by=actor or requester):
            ticket.refresh_from_db(fields=["version", "updated_at"])  # each file bumped them
        ticket_notify_created(ticket=ticket, actor=actor or requester)
    metrics.TICKETS_CREATED.labels(priority=priority).inc()
    return ticket


def _locked(ticket_id: int) -> Ticket:
    return remember(Ticket.objects.select_for_update().get(pk=ticket_id))


def ticket_update(*, ticket_id: int, actor: Any, expected_version: int | None, changes: dict[str, Any]) -> Ticket:
    """Apply field edits if the client saw the current version; one event per changed field."""
    with transaction.atomic():
        ticket = _locked(ticket_id)
        version_check(ticket, expected_version)
        _check_may_edit(ticket, actor, set(changes))
        now = timezone.now()
        changed: list[str] = []
        for name, value in changes.items():
            if event_record_change(
                ticket=ticket, actor=actor, field=name, old=getattr(ticket, name), new=value, at=now
            ):
                setattr(ticket, name, value)
                changed.append(name)
        if not changed:
            return ticket
        if SLA_FIELDS & set(changed):
            changed += ticket_sla_reselect(ticket=ticket, actor=actor, now=now)
        ticket.updated_at = now
        ticket.version = F("version") + 1
        ticket.save(update_fields=[*changed, "updated_at", "version"])
        # Read back under the row lock: after the commit another edit may already have moved the version on, and
        # answering with its ETag would let this client overwrite that edit unseen.
        ticket.refresh_from_db(fields=["version"])
        if "assignee" in changed:
            ticket_notify_assigned(ticket=ticket, actor=actor)
    return ticket


def _check_may_edit(ticket: Ticket, actor: Any, fields: set[str]) -> None:
    if is_staff_role(actor):
        allowed = AGENT_EDITABLE_FIELDS
    else:
        if ticket.status not in REQUESTER_EDITABLE_STATUSES:
            raise NotPermitted("Requesters may edit a ticket only while it is new or open.")
        allowed = REQUESTER_EDITABLE_FIELDS
    refused = sorted(fields - allowed)
    if refused:
        raise InvalidInput({name: ["You may not change this field."] for name in refused})


def ticket_transition(*, ticket_id: int, actor: Any, to: str, note: str = "") -> Ticket:
    """Move a ticket to another status by the lifecycle table; asking for the current status changes nothing."""
    if to not in Ticket.Status.values:
        raise InvalidInput(
            {"to": [f'"{to}" is not a ticket status. Choose one of: {", ".join(Ticket.Status.values)}.']}
        )
    with transaction.atomic():
        ticket = _locked(ticket_id)
        if ticket.status == to:
            return ticket
        requester_only = not is_staff_role(actor)
        if requester_only and to not in TICKET_REQUESTER_TARGETS:
            raise NotPermitted("Requesters may only close their ticket or reopen a resolved one.")
        check_transition(TICKET_TRANSITIONS, ticket.status, to)
        if requester_only and not _requester_may(ticket.status, to):
            raise NotPermitted("Requesters may only reopen a ticket that was resolved.")
        changed = _move(ticket, actor=actor, to=to, note=note, now=timezone.now())
        ticket.save(update_fields=changed)
        ticket.refresh_from_db(fields=["version"])  # under the row lock, as in ticket_update
        ticket_notify_moved(ticket=ticket, to=to, actor=actor, note=note)
    metrics.TICKET_TRANSITIONS.labels(to=to).inc()
    return ticket


def _move(ticket: Ticket, *, actor: Any, to: str, note: str, now: datetime) -> list[str]:
    """The one status change of a locked ticket, checked against the lifecycle table: the status with its
    timestamps, the event and the SLA clocks. Returns the fields to save; the caller saves and notifies."""
    check_transition(TICKET_TRANSITIONS, ticket.status, to)
    old = ticket.status
    ticket.status = to
    changed = ["status", "updated_at", "version"]
    if to == Ticket.Status.RESOLVED:
        ticket.resolved_at = now
        changed.append("resolved_at")
    elif to == Ticket.Status.CLOSED:
        ticket.closed_at = now
        changed.append("closed_at")
        if ticket.resolved_at is None:
            ticket.resolved_at = now
            changed.append("resolved_at")
    elif old == Ticket.Status.RESOLVED:
        ticket.resolved_at = None
        changed.append("resolved_at")
    event_record(
        ticket=ticket, actor=actor, kind=Event.Kind.TRANSITION, field="status", old=old, new=to, note=note, at=now
    )
    changed += ticket_sla_refresh(ticket=ticket, now=now)
    ticket.updated_at = now
    ticket.version = F("version") + 1
    return sorted(set(changed))


def _requester_may(current: str, target: str) -> bool:
    """Beyond the table: a requester reopens only a resolved ticket (in progress is the agents' call)."""
    return target != Ticket.Status.OPEN or current == Ticket.Status.RESOLVED


def comment_create(
    *, ticket_id: int, author: Any, body: str, internal: bool = False, uploads: Sequence[Upload] = ()
) -> Comment:
    """Add a comment. An agent's first public comment is the first response that stops the response clock. Files
    in `uploads` go on the comment, all or none, as in ticket_create."""
    staff = is_staff_role(author)
    if internal and not staff:
        raise NotPermitted("Only agents can write internal notes.")
    with attachments_staged(uploads=uploads) as staged, transaction.atomic():
        ticket = _locked(ticket_id)
        now = timezone.now()
        comment = Comment.objects.create(ticket=ticket, author=author, body=body, internal=internal, created_at=now)
        event_record(
            ticket=ticket,
            actor=author,
            kind=Event.Kind.COMMENT,
            field="internal_comment" if internal else "comment",
            new=comment.pk,
            at=now,
        )
        changed = ["updated_at"]
        ticket.updated_at = now
        if not internal:  # the ETag a requester reads must not count the notes the requester cannot see
            ticket.version = F("version") + 1
            changed.append("version")
        if staff and not internal and ticket.first_response_at is None and author.pk != ticket.requester_id:
            ticket.first_response_at = now
            changed.append("first_response_at")
            event_record(
                ticket=ticket,
                actor=author,
                kind=Event.Kind.CHANGED,
                field="first_response_at",
                new=now.isoformat(),
                at=now,
            )
            changed += ticket_sla_refresh(ticket=ticket, now=now)
        resumed = not internal and author.pk == ticket.requester_id and ticket.status == Ticket.Status.PENDING
        if resumed:
            changed += _move(ticket, actor=author, to=Ticket.Status.IN_PROGRESS, note=REQUESTER_ANSWERED, now=now)
        ticket.save(update_fields=sorted(set(changed)))
        staged.record(ticket=ticket, uploaded_by=author, comment=comment)
        ticket_notify_commented(ticket=ticket, comment=comment)
    if resumed:
        metrics.TICKET_TRANSITIONS.labels(to=Ticket.Status.IN_PROGRESS).inc()
    return comment


def ticket_delete(*, ticket_id: int, actor: Any) -> None:
    """Delete a ticket with its comments, events and attachments (their files once that is committed). Admins
    only."""
    if not is_admin(actor):
        raise NotPermitted("Only admins can delete tickets.")
    with transaction.atomic():
        attachment_files_forget(ticket_id=ticket_id)
        Ticket.objects.filter(pk=ticket_id).delete()
