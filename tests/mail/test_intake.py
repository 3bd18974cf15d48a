"""Mail into tickets end to end, against a real Dovecot and a real SMTP server on loopback: a new mail opens a
ticket and is acknowledged; the agent's reply reaches the requester threaded; the requester's reply, as a real
client writes it, threads into the same ticket; automatic mail and bounces make nothing and send nothing; every
message is processed once; a broken message is kept, set aside and retried."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from itsm.models import InboundMessage, Mailbox, Notification, SuppressedAddress, Ticket
from itsm.services.mail import mail_receive, mail_retry
from itsm.services.mail_polling import mailbox_poll
from itsm.services.notification_delivery import notification_deliver
from itsm.services.ticket_notifications import ticket_notices_expand
from itsm.services.tickets import comment_create, ticket_transition
from tests.factories import make_user

pytestmark = pytest.mark.django_db
Status = InboundMessage.Status


@pytest.fixture(autouse=True)
def _mail_settings(settings: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "support@itsm.example.com"
    settings.ITSM_MAIL_DOMAIN = "itsm.example.com"
    settings.ITSM_MAIL_INBOX_URL = ""


@pytest.fixture
def mailbox(imap_mailbox: Any, make_mailbox: Callable[..., Mailbox]) -> Mailbox:
    return make_mailbox(imap_mailbox)


def message(
    *,
    sender: str = "Oscar Brown <oscar@example.com>",
    subject: str = "Printer on floor 3 jams",
    body: str = "It jams after every page.",
    **headers: str,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "ITSM Service Desk <support@itsm.example.com>"
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="example.com")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return bytes(mail)


def deliver_outbox() -> None:
    ticket_notices_expand()
    for notification in Notification.objects.filter(status=Notification.Status.PENDING).order_by("id"):
        notification_deliver(notification_id=notification.pk)


def test_a_new_mail_opens_a_ticket_and_the_sender_gets_the_acknowledgement(mailbox, imap_mailbox, smtp_capture):
    uid = imap_mailbox.deliver(message())
    counts = mailbox_poll(mailbox_id=mailbox.pk)
    assert counts == {
        "received": 1,
        "new_tickets": 1,
        "replies": 0,
        "ignored": 0,
        "refused": 0,
        "failed": 0,
        "done_before": 0,
    }
    ticket = Ticket.objects.get()
    assert (ticket.title, ticket.description, ticket.requester.email) == (
        "Printer on floor 3 jams",
        "It jams after every page.",
        "oscar@example.com",
    )
    assert ticket.requester.first_name == "Oscar"
    assert "\\Seen" in imap_mailbox.flags(uid)
    deliver_outbox()
    [receipt] = smtp_capture.messages()
    assert receipt["To"] == "oscar@example.com"
    assert receipt["Subject"] == f"[#{ticket.pk}] We received your request: Printer on floor 3 jams"
    assert receipt["Auto-Submitted"] == "auto-generated"
    assert f"opened ticket #{ticket.pk}" in receipt.get_body(("plain",)).get_content()
    assert receipt.get_body(("html",)) is not None


def test_the_agents_reply_threads_and_the_requesters_reply_lands_in_the_same_ticket(
    mailbox, imap_mailbox, smtp_capture, agent, eml: Callable[[str], bytes]
):
    imap_mailbox.deliver(message(sender="Oscar Brown <oscar.brown@gmail.com>"))
    mailbox_poll(mailbox_id=mailbox.pk)
    ticket = Ticket.objects.get()
    comment_create(ticket_id=ticket.pk, author=agent, body="We replaced the toner. Does it work now?")
    deliver_outbox()
    receipt, reply = smtp_capture.messages()
    assert reply["Subject"] == f"[#{ticket.pk}] New reply: {ticket.title}"
    assert reply["In-Reply-To"] == receipt["Message-ID"]
    assert receipt["Message-ID"] in reply["References"].split()
    # Oscar answers from Gmail: quoted history, an HTML alternative, the thread's headers.
    answer = (
        eml("gmail-reply")
        .replace(b"<itsm.t1045.0c9d8e7f6a5b4c3d@itsm.example.com>", reply["Message-ID"].encode())
        .replace(b"<itsm.t1045@itsm.example.com>", f"<itsm.t{ticket.pk}@itsm.example.com>".encode())
    )
    imap_mailbox.deliver(answer)
    assert mailbox_poll(mailbox_id=mailbox.pk)["replies"] == 1
    comment = ticket.comments.order_by("-id")[0]
    assert comment.author.email == "oscar.brown@gmail.com"
    assert comment.body.startswith("The new toner did not help")
    assert "replaced the toner" not in comment.body  # the quoted history is gone
    assert not comment.internal
    assert Ticket.objects.count() == 1


def test_a_reply_with_an_attachment_and_an_html_alternative_threads_by_the_subject_tag(
    mailbox, imap_mailbox, requester
):
    ticket = Ticket.objects.create(title="VPN", requester=requester, created_at=_now(), updated_at=_now())
    reply = EmailMessage()
    reply["From"] = requester.email
    reply["To"] = "support@itsm.example.com"
    reply["Subject"] = f"Re: [#{ticket.pk}] VPN"
    reply.set_content("Here is the log.\n\nOn Tue, ITSM wrote:\n> Can you send the log?\n")
    reply.add_alternative("<p>Here is the log.</p><blockquote>Can you send the log?</blockquote>", subtype="html")
    reply.add_attachment(b"%PDF-1.4 vpn log", maintype="application", subtype="pdf", filename="vpn.pdf")
    imap_mailbox.deliver(bytes(reply))
    assert mailbox_poll(mailbox_id=mailbox.pk)["replies"] == 1
    comment = ticket.comments.get()
    assert comment.body == "Here is the log."
    [attachment] = ticket.attachments.all()
    assert (attachment.filename, attachment.comment_id) == ("vpn.pdf", comment.pk)


def test_a_subject_tag_alone_does_not_let_a_stranger_write_into_someone_elses_ticket(mailbox, imap_mailbox, requester):
    ticket = Ticket.objects.create(title="Salary question", requester=requester, created_at=_now(), updated_at=_now())
    imap_mailbox.deliver(message(sender="mallory@example.net", subject=f"Re: [#{ticket.pk}] Salary question"))
    mailbox_poll(mailbox_id=mailbox.pk)
    assert not ticket.comments.exists()
    assert Ticket.objects.exclude(pk=ticket.pk).get().requester.email == "mallory@example.net"


def test_a_reply_reopens_a_resolved_ticket_and_opens_a_new_one_for_a_closed_one(
    mailbox, imap_mailbox, requester, agent
):
    resolved = Ticket.objects.create(title="A", requester=requester, created_at=_now(), updated_at=_now())
    ticket_transition(ticket_id=resolved.pk, actor=agent, to="resolved")
    closed = Ticket.objects.create(title="B", requester=requester, created_at=_now(), updated_at=_now())
    ticket_transition(ticket_id=closed.pk, actor=agent, to="closed")
    imap_mailbox.deliver(message(sender=requester.email, subject=f"Re: [#{resolved.pk}] A", body="Still broken."))
    imap_mailbox.deliver(message(sender=requester.email, subject=f"Re: [#{closed.pk}] B", body="It is back."))
    mailbox_poll(mailbox_id=mailbox.pk)
    resolved.refresh_from_db()
    assert resolved.status == Ticket.Status.OPEN
    assert resolved.comments.get().body == "Still broken."
    follow_up = Ticket.objects.get(follow_up_of=closed)
    assert f"closed ticket #{closed.pk}" in follow_up.description
    assert InboundMessage.objects.get(ticket=follow_up).detail == f"follow-up of the closed ticket #{closed.pk}"


def test_the_cc_of_the_first_message_become_watchers(mailbox, imap_mailbox, eml: Callable[[str], bytes]):
    imap_mailbox.deliver(eml("attachment-cc"))
    mailbox_poll(mailbox_id=mailbox.pk)
    ticket = Ticket.objects.get()
    assert ticket.requester.email.lower() == "anna.schmidt@contoso.example"
    assert sorted(w.email for w in ticket.watchers.all()) == [
        "max.mustermann@contoso.example",
        "zdenek.novak@contoso.example",
    ]
    assert ticket.attachments.exists()


@pytest.mark.parametrize("name", ["out-of-office", "newsletter"])
def test_automatic_mail_makes_nothing_and_sends_nothing(mailbox, imap_mailbox, smtp_capture, eml, name):
    imap_mailbox.deliver(eml(name))
    assert mailbox_poll(mailbox_id=mailbox.pk)["ignored"] == 1
    deliver_outbox()
    assert not Ticket.objects.exists()
    assert smtp_capture.messages() == []
    assert InboundMessage.objects.get().detail.startswith("automatic mail")


def test_a_bounce_stops_mail_to_the_address_and_answers_nothing(mailbox, imap_mailbox, smtp_capture, eml, agent):
    imap_mailbox.deliver(eml("dsn-bounce"))
    mailbox_poll(mailbox_id=mailbox.pk)
    record = InboundMessage.objects.get()
    assert record.status == Status.IGNORED
    [suppressed] = SuppressedAddress.objects.all()
    assert suppressed.address in record.detail
    user = make_user("gone", "requester")
    type(user).objects.filter(pk=user.pk).update(email=suppressed.address)
    user.refresh_from_db()
    Ticket.objects.create(title="x", requester=user, created_at=_now(), updated_at=_now())
    ticket = Ticket.objects.get()
    comment_create(ticket_id=ticket.pk, author=agent, body="Hello?")
    deliver_outbox()
    assert not Ticket.objects.exclude(pk=ticket.pk).exists()
    assert smtp_capture.messages() == []


def test_the_same_message_read_twice_or_copied_makes_one_ticket(mailbox, imap_mailbox):
    raw = message()
    uid = imap_mailbox.deliver(raw)
    mailbox_poll(mailbox_id=mailbox.pk)
    again = mail_receive(mailbox=mailbox, uidvalidity=mailbox_uidvalidity(mailbox), uid=uid, raw=raw)
    assert again.status == Status.TICKET_CREATED
    imap_mailbox.deliver(raw)  # the same Message-ID under another UID
    mailbox_poll(mailbox_id=mailbox.pk)
    assert Ticket.objects.count() == 1
    assert InboundMessage.objects.filter(status=Status.IGNORED).get().detail.startswith("a copy of message")


def test_a_broken_message_is_kept_set_aside_and_does_not_hold_up_the_next(mailbox, imap_mailbox):
    unreadable = b"\x89PNG\r\n\x1a\n not a message at all\r\n"
    broken = imap_mailbox.deliver(unreadable)
    imap_mailbox.deliver(message())
    counts = mailbox_poll(mailbox_id=mailbox.pk)
    assert (counts["failed"], counts["new_tickets"]) == (1, 1)
    failed = InboundMessage.objects.get(status=Status.FAILED)
    assert b"not a message at all" in bytes(failed.raw)  # as the server gave it (it may write CRLF)
    assert failed.detail.startswith("unreadable: ")
    assert broken not in imap_mailbox.uids()
    assert imap_mailbox.uids("ITSM-Failed")


def test_a_failed_message_is_retried_from_its_kept_bytes(mailbox, imap_mailbox, settings):
    settings.ITSM_MAIL_MAX_BYTES = 100
    imap_mailbox.deliver(message())
    mailbox_poll(mailbox_id=mailbox.pk)
    failed = InboundMessage.objects.get()
    assert failed.status == Status.FAILED
    settings.ITSM_MAIL_MAX_BYTES = 10_000_000
    retried = mail_retry(message_id=failed.pk)
    assert (retried.status, retried.attempts) == (Status.TICKET_CREATED, 2)
    assert Ticket.objects.count() == 1


def test_an_unknown_sender_is_refused_when_the_setting_says_so(mailbox, imap_mailbox, settings):
    settings.ITSM_MAIL_ACCEPT_UNKNOWN_SENDERS = False
    imap_mailbox.deliver(message(sender="stranger@example.org"))
    assert mailbox_poll(mailbox_id=mailbox.pk)["refused"] == 1
    assert not Ticket.objects.exists()


def test_a_sender_opening_too_many_tickets_in_an_hour_is_refused(mailbox, imap_mailbox, settings):
    settings.ITSM_MAIL_MAX_TICKETS_PER_SENDER_PER_HOUR = 2
    for n in range(3):
        imap_mailbox.deliver(message(subject=f"Problem {n}"))
    counts = mailbox_poll(mailbox_id=mailbox.pk)
    assert (counts["new_tickets"], counts["refused"]) == (2, 1)


def test_processing_a_message_costs_a_bounded_number_of_queries(mailbox, requester, django_assert_max_num_queries):
    """Whatever the database holds: the new ticket (its SLA, event, notices, record), then a reply to it. The audit
    trail adds one INSERT per recorded row: the ticket, here also the default SLA policy and calendar made first."""
    first = message(sender=requester.email)
    with django_assert_max_num_queries(28):
        record = mail_receive(mailbox=mailbox, uidvalidity=1, uid=1, raw=first)
    assert record.status == Status.TICKET_CREATED
    reply = message(sender=requester.email, subject="Re: it", In_Reply_To=f"<{_message_id(first)}>")
    with django_assert_max_num_queries(28):
        record = mail_receive(mailbox=mailbox, uidvalidity=1, uid=2, raw=reply)
    assert record.status == Status.REPLY_THREADED


def _message_id(raw: bytes) -> str:
    from email import message_from_bytes

    return str(message_from_bytes(raw)["Message-ID"]).strip("<>")


def mailbox_uidvalidity(mailbox: Mailbox) -> int:
    mailbox.refresh_from_db()
    assert mailbox.uidvalidity is not None
    return mailbox.uidvalidity


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def test_malformed_mime_is_read_as_well_as_it_can_be_and_opens_a_ticket(mailbox, imap_mailbox, eml):
    imap_mailbox.deliver(eml("malformed"))
    imap_mailbox.deliver(eml("unknown-charset"))
    counts = mailbox_poll(mailbox_id=mailbox.pk)
    assert (counts["new_tickets"], counts["failed"]) == (2, 0)


def test_a_failure_after_the_ticket_was_written_takes_the_ticket_back_with_it(mailbox, monkeypatch):
    """The ticket and the message's record commit together: a crash in between leaves neither (the message is
    kept as failed), and the retry makes exactly one ticket."""

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the worker died here")

    monkeypatch.setattr("itsm.services.mail._remember", crash)
    record = mail_receive(mailbox=mailbox, uidvalidity=1, uid=7, raw=message())
    assert record.status == Status.FAILED
    assert "the worker died here" in record.detail
    assert not Ticket.objects.exists()
    monkeypatch.undo()
    assert mail_retry(message_id=record.pk).status == Status.TICKET_CREATED
    assert Ticket.objects.count() == 1


def test_over_smtp_an_internal_note_mails_no_requester_and_an_sla_breach_mails_the_assignee_once(
    smtp_capture, requester, agent
):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from itsm.services.sla import sla_scan
    from tests.factories import make_ticket

    with time_machine.travel(timezone.now() - timedelta(days=2), tick=False):
        ticket = make_ticket(requester, priority="high", assignee=agent)
    deliver_outbox()
    smtp_capture.clear()
    comment_create(ticket_id=ticket.pk, author=agent, body="Internal: the drum is worn.", internal=True)
    sla_scan()
    sla_scan()
    deliver_outbox()
    [breach] = smtp_capture.messages()
    assert (breach["To"], breach["Subject"]) == (agent.email, f"[#{ticket.pk}] SLA breached: {ticket.title}")
    assert "drum" not in breach.get_body(("plain",)).get_content()


def test_an_unknown_sender_whose_name_is_taken_in_another_case_gets_an_account_of_their_own(mailbox, db):
    """User names are unique in any case: with `Jdoe` taken, jdoe@… becomes `jdoe2`, and Jdoe is left alone."""
    jdoe = make_user("Jdoe")
    record = mail_receive(mailbox=mailbox, uidvalidity=1, uid=1, raw=message(sender="jdoe@elsewhere.example"))
    assert record.status == Status.TICKET_CREATED
    assert Ticket.objects.get().requester.username == "jdoe2"
    jdoe.refresh_from_db()
    assert jdoe.email == "Jdoe@example.com"
