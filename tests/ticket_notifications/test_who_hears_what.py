"""Who hears what about a ticket, by e-mail: the requester's side and the staff's side, each user's choices, the
thread headers, bounced addresses, and the SLA mail sent once. The e-mails go through the outbox and Django's
mail backend (locmem here; tests/mail sends them to a real SMTP server)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from itsm.models import Notification, SuppressedAddress, ThreadMessageId, TicketNotice
from itsm.services.notification_delivery import notification_deliver
from itsm.services.sla import sla_scan
from itsm.services.ticket_notifications import preferences_set, ticket_notices_expand
from itsm.services.tickets import comment_create, ticket_transition, ticket_update
from tests.factories import ServiceFactory, TeamFactory, make_ticket, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "support@example.com"
    settings.ITSM_MAIL_DOMAIN = "example.com"


@pytest.fixture
def service(agent: Any) -> Any:
    team = TeamFactory.create(name="Desk")
    team.members.add(agent, make_user("bob", "agent"), make_user("rick", "requester"))
    return ServiceFactory.create(name="Printers", slug="printers", team=team)


def sent() -> list[tuple[str, str]]:
    """(recipient, event) of every e-mail written since the last call, after delivering them."""
    ticket_notices_expand()
    for notification in Notification.objects.filter(status=Notification.Status.PENDING).order_by("id"):
        notification_deliver(notification_id=notification.pk)
    out = [(message.to[0].split("@")[0], str(message.subject)) for message in mail.outbox]
    mail.outbox.clear()
    return out


def test_a_new_ticket_is_acknowledged_to_its_requester_and_announced_to_the_services_team(requester, service):
    ticket = make_ticket(requester, service=service, title="Printer jams")
    assert sorted(sent()) == [
        ("alice", f"[#{ticket.pk}] New ticket: Printer jams"),
        ("bob", f"[#{ticket.pk}] New ticket: Printer jams"),
        ("rita", f"[#{ticket.pk}] We received your request: Printer jams"),
    ]  # rick is a requester in the team: not staff, not told
    receipt = Notification.objects.get(recipient=requester)
    assert receipt.body.startswith(f"Hello rita,\n\nwe received your request and opened ticket #{ticket.pk}.")
    assert "\n-- \n" in receipt.body  # the footer is a signature: mail clients leave it out of a reply


def test_an_agents_public_reply_reaches_the_requester_and_an_internal_note_nobody(requester, agent, service):
    ticket = make_ticket(requester, service=service, assignee=agent)
    sent()
    comment_create(ticket_id=ticket.pk, author=agent, body="Internal: needs a new drum.", internal=True)
    assert sent() == []
    comment_create(ticket_id=ticket.pk, author=agent, body="Please switch it off and on.")
    [(to, subject)] = sent()
    assert (to, subject) == ("rita", f"[#{ticket.pk}] New reply: {ticket.title}")
    message = Notification.objects.get(recipient=requester, subject__contains="New reply")
    assert "Please switch it off and on." in message.body
    assert "needs a new drum" not in message.body + message.html_body


def test_the_requesters_reply_reaches_the_assignee_only(requester, agent, service):
    ticket = make_ticket(requester, service=service, assignee=agent)
    sent()
    comment_create(ticket_id=ticket.pk, author=requester, body="It still jams.")
    assert sent() == [("alice", f"[#{ticket.pk}] The requester replied: {ticket.title}")]


def test_waiting_resolved_and_closed_are_told_to_the_requester(requester, agent):
    ticket = make_ticket(requester, assignee=agent)
    sent()
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="in_progress")
    assert sent() == []
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending", note="Which floor?")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved", note="Replaced the drum.")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="closed")
    subjects = [subject.split(":")[0] for _, subject in sent()]
    assert subjects == [f"[#{ticket.pk}] Waiting for your answer", f"[#{ticket.pk}] Resolved", f"[#{ticket.pk}] Closed"]
    resolved = Notification.objects.get(subject__contains="Resolved")
    assert "Replaced the drum." in resolved.body
    assert "Reply to this e-mail and the ticket opens again" in resolved.body


def test_an_assignment_is_told_to_the_new_assignee_unless_they_took_it_themselves(requester, agent, admin):
    ticket = make_ticket(requester)
    sent()
    ticket_update(ticket_id=ticket.pk, actor=admin, expected_version=None, changes={"assignee": agent})
    assert sent() == [("alice", f"[#{ticket.pk}] Assigned to you: {ticket.title}")]
    ticket_update(ticket_id=ticket.pk, actor=admin, expected_version=None, changes={"assignee": admin})
    ticket_update(ticket_id=ticket.pk, actor=admin, expected_version=None, changes={"assignee": admin})
    assert sent() == []


def test_an_sla_breach_is_told_once_to_the_assignee(requester, agent):
    start = timezone.now() - timedelta(days=2)
    with time_machine.travel(start, tick=False):
        ticket = make_ticket(requester, priority="high", assignee=agent)
    sent()
    sla_scan()
    sla_scan()
    assert sent() == [("alice", f"[#{ticket.pk}] SLA breached: {ticket.title}")]


def test_each_user_chooses_what_they_hear(requester, agent, service):
    preferences_set(user=agent, events={"new_ticket": False})
    preferences_set(user=requester, email=False)
    ticket = make_ticket(requester, service=service)
    assert sent() == [("bob", f"[#{ticket.pk}] New ticket: {ticket.title}")]


def test_an_address_that_bounced_for_good_gets_nothing(requester):
    now = timezone.now()
    SuppressedAddress.objects.create(address="rita@example.com", created_at=now, last_bounced_at=now)
    make_ticket(requester)
    assert sent() == []


def test_every_e_mail_threads_into_the_ticket(requester, agent):
    ticket = make_ticket(requester, assignee=agent)
    comment_create(ticket_id=ticket.pk, author=agent, body="On it.")
    sent()
    ticket_notices_expand()
    first, reply = Notification.objects.filter(recipient=requester).order_by("id")
    root = f"itsm.t{ticket.pk}@example.com"
    assert first.headers["References"] == f"<{root}>"
    assert first.headers["In-Reply-To"] == f"<{root}>"
    # The ticket's thread: its root, then its latest messages, the last being the one answered.
    references = reply.headers["References"].split()
    assert references[0] == f"<{root}>"
    assert first.headers["Message-ID"] in references
    assert references[-1] == reply.headers["In-Reply-To"]
    recorded = set(ThreadMessageId.objects.filter(ticket=ticket).values_list("message_id", flat=True))
    assert {first.headers["Message-ID"].strip("<>"), reply.headers["Message-ID"].strip("<>"), root} <= recorded


def test_the_e_mail_has_a_text_and_an_html_part_and_says_it_is_automatic(requester, agent):
    ticket = make_ticket(requester, assignee=agent)
    comment_create(ticket_id=ticket.pk, author=agent, body="Try <b>this</b> & that.")
    ticket_notices_expand()
    for notification in Notification.objects.all():
        notification_deliver(notification_id=notification.pk)
    message = next(m for m in mail.outbox if "New reply" in m.subject)
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    assert message.extra_headers["Message-ID"].endswith("@example.com>")
    html, mimetype = message.alternatives[0]  # type: ignore[attr-defined]  # an EmailMultiAlternatives
    assert mimetype == "text/html"
    assert "Try &lt;b&gt;this&lt;/b&gt; &amp; that." in html  # escaped, never markup from a comment
    assert "Try <b>this</b> & that." in message.body


def test_the_requests_path_writes_one_notice_and_the_worker_writes_the_mail_once(requester, agent, service):
    ticket = make_ticket(requester, service=service)
    assert TicketNotice.objects.filter(ticket=ticket, expanded_at__isnull=True).count() == 2
    assert not Notification.objects.exists()
    assert ticket_notices_expand() == {"notices": 2, "emails": 3}
    assert ticket_notices_expand() == {"notices": 0, "emails": 0}
    assert Notification.objects.count() == 3
