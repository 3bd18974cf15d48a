"""Who hears what about a ticket, by e-mail through the outbox (retries, attempt log, redelivery).

The requester and the watchers hear that their ticket was received, an agent's public reply (internal notes
never), that it waits on them, that it was resolved (and how to reopen it; the requester alone also gets five
one-click links that rate it, unless it was rated already) and closed. The assignee, or else the
members of the service's team, hear of a new ticket in their queue, a reply of the requester, an assignment, and
an SLA at risk or breached (once per change of the ticket's SLA state, which the scan makes once). Nobody hears of
their own action. Each user may switch events, or all ticket e-mail, off (`NotificationPreference`).

The services only write a `TicketNotice` row in their transaction (one INSERT); a worker expands it into the
e-mails right after the commit, or the every-minute job does if that message was lost.

Every e-mail carries the ticket's tag in its subject ("[#123]"), a Message-ID recorded in the ticket's thread, and
In-Reply-To and References to that thread, so a reply threads into the ticket (itsm.services.mail).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from itsm.mail.threading import make_message_id, tagged_subject, ticket_thread_root
from itsm.models import Comment, NotificationPreference, ThreadMessageId, Ticket, TicketNotice, TicketRating
from itsm.models.satisfaction import SCORES
from itsm.roles import is_staff_role
from itsm.services.notifications import Email, notify_by_email
from itsm.services.publisher import publish_soon
from itsm.services.satisfaction import rating_link

logger = logging.getLogger(__name__)

EXPAND_TASK = "itsm.tasks.ticket_notifications.expand_ticket_notices"


@dataclass(frozen=True)
class TicketEvent:
    """An event people may hear about: its name in preferences, who hears it, and its subject line."""

    name: str
    audience: str  # "requester": the requester and watchers; "staff": the assignee, else the service's team
    subject: str
    label: str


EVENTS = {
    event.name: event
    for event in (
        TicketEvent("ticket_received", "requester", "We received your request", "My ticket was received"),
        TicketEvent("agent_replied", "requester", "New reply", "An agent replied"),
        TicketEvent("waiting_on_you", "requester", "Waiting for your answer", "A ticket waits for my answer"),
        TicketEvent("resolved", "requester", "Resolved", "My ticket was resolved"),
        TicketEvent("closed", "requester", "Closed", "My ticket was closed"),
        TicketEvent("new_ticket", "staff", "New ticket", "A new ticket in my queue"),
        TicketEvent("requester_replied", "staff", "The requester replied", "The requester replied"),
        TicketEvent("assigned_to_you", "staff", "Assigned to you", "A ticket was assigned to me"),
        TicketEvent("sla_at_risk", "staff", "SLA at risk", "A ticket's SLA is at risk"),
        TicketEvent("sla_breached", "staff", "SLA breached", "A ticket's SLA was breached"),
    )
}
MOVES = {Ticket.Status.PENDING: "waiting_on_you", Ticket.Status.RESOLVED: "resolved", Ticket.Status.CLOSED: "closed"}
SLA_STATES = {Ticket.SlaStatus.AT_RISK: "sla_at_risk", Ticket.SlaStatus.BREACHED: "sla_breached"}


# --- the moments the ticket and SLA services report (one INSERT in their transaction) ---------------------------
def ticket_notify_created(*, ticket: Ticket, actor: Any) -> None:
    _notice(ticket, ["ticket_received", "new_ticket"], actor)


def ticket_notify_commented(*, ticket: Ticket, comment: Comment) -> None:
    """A public comment by staff goes to the requester's side, one by anyone else to the staff's side."""
    if comment.internal:
        return
    staff_reply = is_staff_role(comment.author) and comment.author_id != ticket.requester_id
    _notice(ticket, ["agent_replied" if staff_reply else "requester_replied"], comment.author, comment=comment)


def ticket_notify_moved(*, ticket: Ticket, to: str, actor: Any, note: str = "") -> None:
    if to in MOVES:
        _notice(ticket, [MOVES[Ticket.Status(to)]], actor, note=note)


def ticket_notify_assigned(*, ticket: Ticket, actor: Any) -> None:
    if ticket.assignee_id is not None:
        _notice(ticket, ["assigned_to_you"], actor)


def ticket_notify_sla(*, ticket: Ticket, state: str) -> None:
    if state in SLA_STATES:
        _notice(ticket, [SLA_STATES[Ticket.SlaStatus(state)]], None)


def _notice(ticket: Ticket, events: list[str], actor: Any, *, comment: Comment | None = None, note: str = "") -> None:
    now = timezone.now()
    actor = actor if getattr(actor, "pk", None) else None
    TicketNotice.objects.bulk_create(
        TicketNotice(ticket=ticket, event=event, actor=actor, comment=comment, note=note, created_at=now)
        for event in events
    )
    transaction.on_commit(_expand_soon)


def _expand_soon() -> None:
    """Ask a worker to write the e-mails now, without waiting on a slow broker; the every-minute job catches up on
    any notice whose message was lost."""

    def send() -> None:
        try:
            current_app.send_task(EXPAND_TASK, retry=False, expires=120)
        except Exception:  # the broker is down: the notice stays pending and the job expands it
            logger.warning("could not queue the ticket e-mail; the every-minute job sends it", exc_info=True)

    publish_soon(send, "the expansion of ticket notices")


# --- the worker's side: notices into e-mails --------------------------------------------------------------------
def ticket_notices_expand(*, batch_size: int = 200) -> dict[str, int]:
    """Turn pending notices into e-mails in the outbox, oldest first, each exactly once (locked rows are another
    worker's; the notices and their e-mails commit together)."""
    expanded = emails = 0
    with transaction.atomic():
        pending = list(
            TicketNotice.objects.filter(expanded_at__isnull=True)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related(
                "ticket__requester", "ticket__assignee", "ticket__service__team", "actor", "comment__author"
            )
            .order_by("id")[:batch_size]
        )
        for notice in pending:
            emails += _send(notice)
            expanded += 1
        TicketNotice.objects.filter(pk__in=[notice.pk for notice in pending]).update(expanded_at=timezone.now())
    return {"notices": expanded, "emails": emails}


# --- preferences ----------------------------------------------------------------------------------------------
def preferences_of(user: Any) -> dict[str, Any]:
    """{"email": bool, "events": {name: bool}} with the defaults (everything on) where the user chose nothing."""
    chosen = NotificationPreference.objects.filter(user=user).first()
    off = set(chosen.off) if chosen else set()
    return {"email": chosen.email if chosen else True, "events": {name: name not in off for name in EVENTS}}


def preferences_set(*, user: Any, email: bool | None = None, events: dict[str, bool] | None = None) -> dict[str, Any]:
    """Change some of a user's choices; an unknown event name is refused by the caller's validation."""
    current = preferences_of(user)
    wanted = {**current["events"], **(events or {})}
    NotificationPreference.objects.update_or_create(
        user=user,
        defaults={
            "email": current["email"] if email is None else email,
            "off": sorted(name for name, on in wanted.items() if not on),
            "updated_at": timezone.now(),
        },
    )
    return preferences_of(user)


def _wants(users: list[Any], event: str) -> list[Any]:
    chosen = {p.user_id: p for p in NotificationPreference.objects.filter(user__in=[u.pk for u in users])}
    return [u for u in users if u.pk not in chosen or (chosen[u.pk].email and event not in chosen[u.pk].off)]


# --- writing the e-mails --------------------------------------------------------------------------------------
def _audience(ticket: Ticket, event: TicketEvent) -> list[Any]:
    if event.audience == "requester":
        return [ticket.requester, *ticket.watchers.all()]
    if ticket.assignee is not None:
        return [ticket.assignee]
    if event.name == "assigned_to_you":
        return []  # unassigned again before the e-mail was written
    team = ticket.service.team if ticket.service is not None else None
    return [member for member in team.members.all() if is_staff_role(member)] if team is not None else []


def _send(notice: TicketNotice) -> int:
    event, ticket = EVENTS[notice.event], notice.ticket
    people: dict[int, Any] = {}
    for user in _audience(ticket, event):
        # Nobody hears of their own action, but the requester does get the receipt of their own request.
        if user is not None and (user.pk != notice.actor_id or event.name == "ticket_received"):
            people.setdefault(user.pk, user)
    recipients = _wants(list(people.values()), event.name)
    if not recipients:
        return 0
    subject = tagged_subject(ticket.pk, f"{event.subject}: {ticket.title}")
    references = _thread(ticket)
    now = timezone.now()
    emails, thread_ids = [], []
    # The links rate as the requester: theirs alone, never the watchers'; and only while the ticket is unrated.
    rating_links = []
    if event.name == "resolved" and not TicketRating.objects.filter(ticket_id=ticket.pk).exists():
        rating_links = [(score, rating_link(ticket, score)) for score in SCORES]
    for user in recipients:
        context = {
            "event": event.name,
            "ticket": ticket,
            "comment": notice.comment,
            "note": notice.note,
            "recipient": user,
            "url": f"{settings.ITSM_PUBLIC_URL}/portal/tickets/{ticket.pk}/",
            "staff": event.audience == "staff",
            "rating_links": rating_links if user.pk == ticket.requester_id else [],
        }
        message_id = make_message_id(ticket_id=ticket.pk, domain=settings.ITSM_MAIL_DOMAIN)
        thread_ids.append(ThreadMessageId(message_id=message_id, ticket=ticket, outgoing=True, created_at=now))
        headers = {
            "Message-ID": f"<{message_id}>",
            "In-Reply-To": f"<{references[-1]}>",
            "References": " ".join(f"<{ref}>" for ref in references),
            "X-ITSM-Ticket": str(ticket.pk),
        }
        emails.append(
            Email(
                recipient=user,
                subject=subject,
                body=render_to_string("itsm/email/ticket.txt", context).strip() + "\n",
                html_body=render_to_string("itsm/email/ticket.html", context),
                headers=headers,
            )
        )
    ThreadMessageId.objects.bulk_create(thread_ids)
    return len(notify_by_email(emails=emails, ticket=ticket))


def _thread(ticket: Ticket) -> list[str]:
    """The References of a new message: the thread's root, then its latest messages (at most ten ids in all), the
    last being the message it answers."""
    root = ticket_thread_root(ticket_id=ticket.pk, domain=settings.ITSM_MAIL_DOMAIN)
    ThreadMessageId.objects.get_or_create(
        message_id=root, defaults={"ticket": ticket, "outgoing": True, "created_at": ticket.created_at}
    )
    latest = ThreadMessageId.objects.filter(ticket=ticket).exclude(message_id=root).order_by("-created_at", "-id")
    return [root, *reversed(list(latest.values_list("message_id", flat=True)[:9]))]
