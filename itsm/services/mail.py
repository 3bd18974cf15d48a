"""Mail into tickets: each message read from a mailbox opens a ticket, threads into one as a reply, or is recorded
as ignored (automatic mail, a bounce, a duplicate), refused (an unknown sender, a flood) or failed (unreadable).

A message is processed exactly once: its identity (mailbox, UIDVALIDITY, UID) is a unique row written in the same
transaction as its effect, so a second read of the message finds the row, and a worker that dies before the commit
leaves nothing behind for the next poll to trip over. A message that fails is recorded with its error and its raw
bytes, never dropped, and never holds up the messages behind it (services.mailboxes moves it aside).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from itsm import metrics
from itsm.audit import audit_context, audited_update
from itsm.exceptions import InvalidInput
from itsm.mail.parse import MailParseError, ParsedMail, parse_mail
from itsm.mail.reply import strip_quoted
from itsm.mail.threading import ticket_id_from_subject
from itsm.models import Comment, InboundMessage, Mailbox, SuppressedAddress, ThreadMessageId, Ticket
from itsm.roles import Role, is_staff_role
from itsm.services.attachments import attachment_create
from itsm.services.tickets import comment_create, ticket_create, ticket_transition
from itsm.services.users import user_upsert, username_taken

logger = logging.getLogger(__name__)

Status = InboundMessage.Status
User = get_user_model()


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str = ""
    ticket: Ticket | None = None
    comment: Comment | None = None


def mail_receive(*, mailbox: Mailbox, uidvalidity: int, uid: int, raw: bytes) -> InboundMessage:
    """Process one message, once. Returns its record; `record.before` is true when an earlier read processed it
    (a worker that died before saving the mailbox's progress, a second poller)."""
    done = InboundMessage.objects.filter(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid).first()
    if done is not None:
        done.before = True
        return done
    try:
        mail = parse_mail(raw, max_bytes=settings.ITSM_MAIL_MAX_BYTES)
    except MailParseError as exc:
        return _record(mailbox, uidvalidity, uid, raw, None, Outcome(Status.FAILED, f"unreadable: {exc}"))
    try:
        # The audit trail's source for everything the message does, whoever reads it (a task, fetch_mail, a retry).
        with transaction.atomic(), audit_context(source="mail", detail=f"mailbox {mailbox.name}", request=None):
            return _record(mailbox, uidvalidity, uid, raw, mail, _apply(mailbox, mail))
    except IntegrityError:
        # Another worker recorded the same message first; its effect stands, this one's was rolled back.
        found = InboundMessage.objects.filter(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid).first()
        if found is None:
            raise
        found.before = True
        return found
    except Exception as exc:  # a bug or an outage while applying it: kept as failed, retried from the admin
        logger.exception("mailbox %s: message uid %s failed", mailbox.pk, uid)
        return _record(mailbox, uidvalidity, uid, raw, mail, Outcome(Status.FAILED, f"{type(exc).__name__}: {exc}"))


def mail_retry(*, message_id: int) -> InboundMessage:
    """Process a failed message again from its kept bytes (the admin's retry); its record shows the new outcome."""
    message = InboundMessage.objects.get(pk=message_id)
    if message.status != Status.FAILED or message.raw_truncated:
        return message
    raw = bytes(message.raw)
    attempts = message.attempts + 1
    with transaction.atomic():
        InboundMessage.objects.filter(pk=message.pk, status=Status.FAILED).delete()
        again = mail_receive(mailbox=message.mailbox, uidvalidity=message.uidvalidity, uid=message.uid, raw=raw)
    InboundMessage.objects.filter(pk=again.pk).update(attempts=attempts)
    again.refresh_from_db()
    return again


def _record(
    mailbox: Mailbox, uidvalidity: int, uid: int, raw: bytes, mail: ParsedMail | None, outcome: Outcome
) -> InboundMessage:
    now = timezone.now()
    keep = settings.ITSM_MAIL_KEEP_RAW_BYTES
    message = InboundMessage.objects.create(
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=(mail.message_id if mail else "")[:500],
        sender=(mail.sender if mail else "")[:320],
        subject=(mail.subject if mail else "")[:300],
        status=outcome.status,
        detail=outcome.detail[:4000],
        ticket=outcome.ticket,
        comment=outcome.comment,
        raw=raw[:keep],
        raw_truncated=len(raw) > keep,
        size=len(raw),
        received_at=now,
        processed_at=now,
    )
    metrics.MAIL_MESSAGES.labels(outcome=outcome.status).inc()
    return message


# --- what a message does ----------------------------------------------------------------------------------------
def _apply(mailbox: Mailbox, mail: ParsedMail) -> Outcome:
    if mail.bounce is not None:
        return _bounced(mail)
    if mail.auto_generated:
        return Outcome(Status.IGNORED, f"automatic mail ({mail.auto_generated}): not answered")
    if not mail.sender:
        return Outcome(Status.REFUSED, "the message has no sender address")
    if mail.sender == settings.DEFAULT_FROM_EMAIL.lower():
        return Outcome(Status.IGNORED, "sent by the platform itself")
    if mail.message_id:
        earlier = InboundMessage.objects.filter(
            mailbox=mailbox, message_id=mail.message_id, status__in=[Status.TICKET_CREATED, Status.REPLY_THREADED]
        ).first()
        if earlier is not None:
            return Outcome(Status.IGNORED, f"a copy of message #{earlier.pk}, already processed", earlier.ticket)
    sender = _user_for(mail.sender, mail.sender_name)
    if sender is None:
        return Outcome(Status.REFUSED, f"unknown sender {mail.sender} (ITSM_MAIL_ACCEPT_UNKNOWN_SENDERS is off)")
    with audit_context(actor=sender, actor_id=None, actor_email=None):
        ticket = _ticket_replied_to(mail, sender)
        if ticket is not None and ticket.status != Ticket.Status.CLOSED:
            return _reply(ticket, sender, mail)
        return _new_ticket(mailbox, sender, mail, follow_up_of=ticket)


def _bounced(mail: ParsedMail) -> Outcome:
    """A delivery failure: a permanent one stops further mail to the address; nothing answers a bounce."""
    bounce = mail.bounce
    assert bounce is not None
    addresses = ", ".join(bounce.recipients)
    if not bounce.permanent:
        return Outcome(Status.IGNORED, f"temporary delivery failure ({bounce.status}) for {addresses}")
    now = timezone.now()
    for address in bounce.recipients:
        suppressed, created = SuppressedAddress.objects.get_or_create(
            address=address.lower(),
            defaults={
                "reason": bounce.diagnostic[:2000],
                "status": bounce.status,
                "created_at": now,
                "last_bounced_at": now,
            },
        )
        if not created:
            audited_update(
                SuppressedAddress.objects.filter(pk=suppressed.pk),
                bounces=suppressed.bounces + 1,
                last_bounced_at=now,
                reason=bounce.diagnostic[:2000],
            )
    return Outcome(Status.IGNORED, f"bounce ({bounce.status}): no more mail to {addresses}")


def _ticket_replied_to(mail: ParsedMail, sender: Any) -> Ticket | None:
    """The ticket a reply belongs to: by the thread's Message-IDs first, then by the subject's [#123] tag when the
    sender takes part in that ticket (a tag alone must not let anyone write into someone else's ticket)."""
    ids = [*mail.in_reply_to, *mail.references]
    if ids:
        known = ThreadMessageId.objects.filter(message_id__in=ids).select_related("ticket").order_by("-created_at")
        for thread_id in known:
            if _takes_part(thread_id.ticket, sender):
                return thread_id.ticket
    tagged = ticket_id_from_subject(mail.subject)
    if tagged is not None:
        ticket = Ticket.objects.filter(pk=tagged).first()
        if ticket is not None and _takes_part(ticket, sender):
            return ticket
    return None


def _takes_part(ticket: Ticket, user: Any) -> bool:
    return ticket.requester_id == user.pk or is_staff_role(user) or ticket.watchers.filter(pk=user.pk).exists()


def _reply(ticket: Ticket, sender: Any, mail: ParsedMail) -> Outcome:
    """A public comment by the sender with the quoted history stripped; a resolved ticket opens again."""
    if ticket.status == Ticket.Status.RESOLVED:
        ticket_transition(ticket_id=ticket.pk, actor=sender, to=Ticket.Status.OPEN, note="Reopened by a reply by mail.")
    body = strip_quoted(mail.text).strip() or "(no text)"
    comment = comment_create(ticket_id=ticket.pk, author=sender, body=body)
    left_out = _attach(ticket, sender, mail, comment)
    _remember(mail, ticket)
    return Outcome(Status.REPLY_THREADED, left_out, ticket, comment)


def _new_ticket(mailbox: Mailbox, sender: Any, mail: ParsedMail, *, follow_up_of: Ticket | None) -> Outcome:
    hour_ago = timezone.now() - timedelta(hours=1)
    recent = InboundMessage.objects.filter(
        sender=mail.sender, status=Status.TICKET_CREATED, received_at__gte=hour_ago
    ).count()
    limit = settings.ITSM_MAIL_MAX_TICKETS_PER_SENDER_PER_HOUR
    if recent >= limit:
        return Outcome(
            Status.REFUSED, f"{mail.sender} opened {recent} tickets by mail in the last hour (at most {limit})"
        )
    description = mail.text.strip()
    if follow_up_of is not None:
        description = f"A reply to the closed ticket #{follow_up_of.pk}.\n\n{description}"
    ticket = ticket_create(
        requester=sender,
        actor=sender,
        title=(mail.subject or "(no subject)")[:200],
        description=description,
        priority=mailbox.priority if mailbox.priority in Ticket.Priority.values else Ticket.Priority.MEDIUM,
        service=mailbox.service,
    )
    if follow_up_of is not None:
        audited_update(Ticket.objects.filter(pk=ticket.pk), follow_up_of=follow_up_of)
    watchers = [_user_for(address, "") for address in mail.cc if address != mail.sender and not _is_ours(address)]
    ticket.watchers.add(*[user for user in watchers if user is not None])
    left_out = _attach(ticket, sender, mail, None)
    _remember(mail, ticket)
    detail = f"follow-up of the closed ticket #{follow_up_of.pk}" if follow_up_of is not None else ""
    return Outcome(Status.TICKET_CREATED, "; ".join(part for part in (detail, left_out) if part), ticket)


def _attach(ticket: Ticket, sender: Any, mail: ParsedMail, comment: Comment | None) -> str:
    """The mail's attachments on the ticket (or the reply). One refused by the attachment rules is left out and
    named in the record; the rest of the message goes through."""
    refused = []
    for attachment in mail.attachments:
        try:
            attachment_create(
                ticket=ticket,
                comment=comment,
                uploaded_by=sender,
                filename=attachment.filename,
                content_type=attachment.content_type,
                data=attachment.data,
            )
        except InvalidInput as exc:
            reasons = "; ".join(message for messages in exc.errors.values() for message in messages)
            refused.append(f"{attachment.filename}: {reasons}")
    return f"attachments left out: {', '.join(refused)}" if refused else ""


def _remember(mail: ParsedMail, ticket: Ticket) -> None:
    """The message's own Message-ID joins the ticket's thread: a reply to it (by someone in Cc) threads too."""
    if mail.message_id:
        ThreadMessageId.objects.get_or_create(
            message_id=mail.message_id[:500],
            defaults={"ticket": ticket, "outgoing": False, "created_at": timezone.now()},
        )


def _is_ours(address: str) -> bool:
    return address == settings.DEFAULT_FROM_EMAIL.lower() or Mailbox.objects.filter(username__iexact=address).exists()


def _user_for(address: str, name: str) -> Any:
    """The active user with this address, or a new requester account for it when unknown senders are accepted."""
    found = User.objects.filter(email__iexact=address, is_active=True).order_by("pk").first()
    if found is not None or not settings.ITSM_MAIL_ACCEPT_UNKNOWN_SENDERS:
        return found
    local = "".join(c for c in address.partition("@")[0] if c.isalnum() or c in "._-")[:100] or "requester"
    username, suffix = local, 1
    while username_taken(username):  # in any case: `jdoe` is taken by `Jdoe`
        suffix += 1
        username = f"{local}{suffix}"
    user, _ = user_upsert(username=username, role=Role.REQUESTER, password=None, email=address)
    first, _, last = name.partition(" ")
    if first:
        audited_update(User.objects.filter(pk=user.pk), first_name=first[:150], last_name=last[:150])
    return user
