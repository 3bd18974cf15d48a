"""The resolution e-mail asks the requester, and only the requester, to rate the ticket: five one-click links, in
the text part and the HTML part, each rating with its own score; none once the ticket is rated."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail as outbox
from django.core.mail import EmailMultiAlternatives

from itsm.models import Notification, TicketRating
from itsm.services.notification_delivery import notification_deliver
from itsm.services.satisfaction import ticket_rate, ticket_rate_by_token
from itsm.services.ticket_notifications import ticket_notices_expand
from itsm.services.tickets import ticket_transition
from tests.factories import make_ticket, make_user
from tests.satisfaction.conftest import token_of

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https://desk\.example\.com/portal/rate/[^/\s\"]+/")


@pytest.fixture(autouse=True)
def _mail(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ITSM_PUBLIC_URL = "https://desk.example.com"


def resolution_mail(user: Any) -> Notification:
    ticket_notices_expand()
    return Notification.objects.get(recipient=user, subject__contains="Resolved")


def test_the_requesters_resolution_mail_carries_five_links_that_rate_with_their_score(
    requester: Any, agent: Any
) -> None:
    ticket = make_ticket(requester, title="Printer jams")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved", note="New drum.")
    mail = resolution_mail(requester)

    text_links = LINK.findall(mail.body)
    assert len(text_links) == 5
    assert [f"{score}: {link}" for score, link in zip(range(1, 6), text_links, strict=True)] == [
        line for line in mail.body.splitlines() if LINK.search(line)
    ]
    assert "How did we do?" in mail.body
    assert LINK.findall(mail.html_body) == text_links
    assert [score for score in range(1, 6) if f'">{score}</a>' in mail.html_body] == [1, 2, 3, 4, 5]

    rating = ticket_rate_by_token(token=token_of(text_links[3]))
    assert (rating.ticket_id, rating.score, rating.rated_by) == (ticket.pk, 4, requester)


def test_the_mail_goes_out_with_the_links_in_both_parts(requester: Any, agent: Any) -> None:
    ticket = make_ticket(requester)
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    notification = resolution_mail(requester)
    notification_deliver(notification_id=notification.pk)
    [message] = [m for m in outbox.outbox if "Resolved" in str(m.subject)]
    assert isinstance(message, EmailMultiAlternatives)
    html = next(content for content, kind in message.alternatives if kind == "text/html")
    assert len(LINK.findall(str(message.body))) == 5
    assert len(set(LINK.findall(str(html)))) == 5


def test_a_watcher_hears_of_the_resolution_without_links(requester: Any, agent: Any) -> None:
    watcher = make_user("walt", "requester")
    ticket = make_ticket(requester)
    ticket.watchers.add(watcher)
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")

    watched = resolution_mail(watcher)
    assert LINK.findall(watched.body + watched.html_body) == []
    assert "How did we do?" not in watched.body
    assert len(LINK.findall(resolution_mail(requester).body)) == 5


def test_a_ticket_resolved_again_after_its_rating_asks_no_more(requester: Any, agent: Any) -> None:
    ticket = make_ticket(requester)
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    ticket_notices_expand()
    ticket_rate(ticket_id=ticket.pk, actor=requester, score=3)
    ticket_transition(ticket_id=ticket.pk, actor=requester, to="open")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    ticket_notices_expand()

    latest = Notification.objects.filter(recipient=requester, subject__contains="Resolved").latest("id")
    assert LINK.findall(latest.body + latest.html_body) == []
    assert TicketRating.objects.get(ticket=ticket).score == 3


def test_no_other_mail_asks_for_a_rating(requester: Any, agent: Any) -> None:
    ticket = make_ticket(requester)
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="pending")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="resolved")
    ticket_transition(ticket_id=ticket.pk, actor=agent, to="closed")
    ticket_notices_expand()
    others = Notification.objects.exclude(subject__contains="Resolved")
    assert sorted(n.subject.split(":")[0].split("] ")[1] for n in others) == [
        "Closed",
        "Waiting for your answer",
        "We received your request",
    ]
    assert all(LINK.findall(n.body + n.html_body) == [] for n in others)
