"""The agents' desk: the saved queues of tickets, the numbers the admin index opens with (two statements whatever
the size of the desk), and a ticket's conversation as one thread in time order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet

from itsm.lifecycles import INCIDENT_OPEN_STATUSES, TICKET_OPEN_STATUSES
from itsm.models import Attachment, Comment, Event, Incident, Service, Ticket
from itsm.queries.tickets import comments_visible_to, events_visible_to

# The saved queues, in the order the desk shows them: the name in the URL (?queue=…) and what the agent reads.
QUEUES = {
    "mine": "My open tickets",
    "unassigned": "Unassigned in my teams",
    "at_risk": "At risk",
    "breached": "Breached",
    "pending": "Waiting on requester",
}
# Events the thread shows otherwise: a comment is its own entry, and so is a file (with its comment or alone).
SHOWN_ELSEWHERE = frozenset({"comment", "internal_comment", "attachment", "internal_attachment"})


def my_team_services(user: Any) -> QuerySet[Service, Any]:
    """The services of the teams `user` is a member of, as a subquery of ids."""
    return Service.objects.filter(team__members=user).values("pk")


def queue_q(name: str, user: Any) -> Q:
    """The filter of one queue for `user`. Mine and unassigned depend on who asks; at risk, breached and waiting on
    the requester are the whole desk's (every agent works every ticket)."""
    still_open = Q(status__in=sorted(TICKET_OPEN_STATUSES))
    filters = {
        "mine": still_open & Q(assignee=user),
        "unassigned": still_open & Q(assignee__isnull=True, service__in=my_team_services(user)),
        "at_risk": still_open & Q(sla_status=Ticket.SlaStatus.AT_RISK),
        "breached": still_open & Q(sla_status=Ticket.SlaStatus.BREACHED),
        "pending": Q(status=Ticket.Status.PENDING),
    }
    return filters[name]


@dataclass(frozen=True)
class DeskNumbers:
    """What the admin index opens with: each queue's count, and the open incidents by severity."""

    queues: dict[str, int]
    incidents: dict[str, int]


def queue_counts(user: Any) -> dict[str, int]:
    """Every queue's count for `user` in one pass over the open tickets (a FILTER clause per queue)."""
    counts = Ticket.objects.filter(status__in=sorted(TICKET_OPEN_STATUSES)).aggregate(
        **{name: Count("pk", filter=queue_q(name, user)) for name in QUEUES}
    )
    return {name: int(counts[name] or 0) for name in QUEUES}


def open_incidents_by_severity() -> dict[str, int]:
    """The open incidents counted by severity, every severity named (one grouped count)."""
    by_severity = dict(
        Incident.objects.filter(status__in=sorted(INCIDENT_OPEN_STATUSES))
        .order_by()
        .values_list("severity")
        .annotate(n=Count("pk"))
        .values_list("severity", "n")
    )
    return {severity: by_severity.get(severity, 0) for severity in Incident.Severity.values}


def desk_numbers(user: Any) -> DeskNumbers:
    """Two statements whatever the size of the desk."""
    return DeskNumbers(queues=queue_counts(user), incidents=open_incidents_by_severity())


@dataclass
class ThreadEntry:
    """One entry of a ticket's conversation: the opening description, a comment (public reply or internal note)
    with its files, a file on the ticket itself, or an event (a move, an assignment, an SLA change)."""

    at: datetime
    kind: str  # "opened", "comment", "file" or "event"
    actor: Any = None
    comment: Comment | None = None
    event: Event | None = None
    attachments: list[Attachment] = field(default_factory=list)
    text: str = ""


def ticket_thread(user: Any, ticket: Ticket) -> list[ThreadEntry]:
    """The ticket as one thread, oldest first, as `user` may see it, in four statements whatever its length: the
    comments, the files, the events, and the people named by assignment events (and the requester, unless
    the ticket was read with it)."""
    comments = list(comments_visible_to(user, ticket))
    visible_comments = {comment.pk for comment in comments}
    files: dict[int | None, list[Attachment]] = {}
    for attachment in Attachment.objects.filter(ticket=ticket).select_related("uploaded_by").order_by("created_at"):
        if attachment.comment_id is None or attachment.comment_id in visible_comments:
            files.setdefault(attachment.comment_id, []).append(attachment)
    events = [event for event in events_visible_to(user, ticket) if event.field not in SHOWN_ELSEWHERE]
    entries = [ThreadEntry(at=ticket.created_at, kind="opened", actor=ticket.requester, text=ticket.description)]
    entries += [
        ThreadEntry(at=c.created_at, kind="comment", actor=c.author, comment=c, attachments=files.get(c.pk, []))
        for c in comments
    ]
    entries += [
        ThreadEntry(at=a.created_at, kind="file", actor=a.uploaded_by, attachments=[a]) for a in files.get(None, [])
    ]
    names = _usernames({int(v) for e in events if e.field == "assignee" for v in (e.old_value, e.new_value) if v})
    for event in events:
        entries.append(ThreadEntry(at=event.created_at, kind="event", actor=event.actor, event=event))
        if event.field == "assignee":
            event.old_value = names.get(event.old_value, event.old_value)
            event.new_value = names.get(event.new_value, event.new_value)
    # The creation event says what the opening entry says.
    entries = [e for e in entries if not (e.event is not None and e.event.kind == Event.Kind.CREATED)]
    order = {"opened": 0, "comment": 1, "file": 2, "event": 3}
    return sorted(entries, key=lambda entry: (entry.at, order[entry.kind]))


def _usernames(ids: set[int]) -> dict[str, str]:
    if not ids:
        return {}
    users = get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")
    return {str(pk): username for pk, username in users}
