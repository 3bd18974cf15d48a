"""A person the platform knows a lot about: Jane Quimby wrote in by mail (her account was made by the intake), then
worked her ticket in the API, uploaded a file, rated the answer, had a private notification address and a bounce;
agents quoted her name and address; her address once was another one."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from unittest.mock import patch

import pytest
from django.contrib.admin.models import CHANGE
from django.contrib.admin.models import LogEntry as AdminLogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import ManagementUtility
from django.utils import timezone

from itsm.models import Attachment, Comment, InboundMessage, Mailbox, NotificationChannel, SuppressedAddress, Ticket
from itsm.services.attachments import attachment_create
from itsm.services.logins import password_reset_take
from itsm.services.mail import mail_receive
from itsm.services.satisfaction import ticket_rate
from itsm.services.ticket_notifications import ticket_notices_expand
from itsm.services.tickets import comment_create, ticket_transition

NAME = "Jane Quimby"
EMAIL = "jane.quimby@example.org"
USERNAME = "jane.quimby"
OLD_EMAIL = "jq.before@example.org"
CHANNEL_EMAIL = "jq.private@example.net"
# What must be gone after the erasure, wherever it was.
TRACES = (NAME, EMAIL, USERNAME, OLD_EMAIL, CHANNEL_EMAIL)


@dataclass
class Person:
    user: Any
    ticket: Ticket
    comment: Comment
    attachment: Attachment
    message: InboundMessage


def mail_from_jane() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"{NAME} <{EMAIL}>"
    mail["To"] = "ITSM Service Desk <support@itsm.example.com>"
    mail["Subject"] = f"VPN drops for {NAME}"
    mail["Message-ID"] = "<vpn-1@example.org>"
    mail.set_content(f"Hello,\n\nthe VPN drops every hour.\n\n-- \n{NAME}\n{EMAIL}\n")
    return bytes(mail)


@pytest.fixture
def person(db: Any, settings: Any, agent: Any, client_for: Any) -> Person:
    settings.DEFAULT_FROM_EMAIL = "support@itsm.example.com"
    settings.ITSM_MAIL_DOMAIN = "itsm.example.com"
    settings.ITSM_MAIL_ACCEPT_UNKNOWN_SENDERS = True
    mailbox = Mailbox.objects.create(name="support", host="127.0.0.1", username="support@itsm.example.com")
    message = mail_receive(mailbox=mailbox, uidvalidity=1, uid=1, raw=mail_from_jane())
    assert message.status == InboundMessage.Status.TICKET_CREATED, message.detail
    ticket = Ticket.objects.get(inbound_messages=message)
    jane = ticket.requester
    assert (jane.username, jane.get_full_name()) == (USERNAME, NAME)

    # An earlier address, recorded by the audit trail when it changed.
    jane.email = OLD_EMAIL
    jane.save()
    jane.email = EMAIL
    jane.save()

    as_jane = client_for(jane)
    response = as_jane.post(f"/api/v1/tickets/{ticket.pk}/comments/", {"body": "Still dropping, Jane"}, format="json")
    assert response.status_code == 201, response.content
    comment = Comment.objects.get(pk=response.json()["id"])
    comment_create(ticket_id=ticket.pk, author=agent, body=f"Thanks {NAME}, we wrote to {EMAIL}.")
    comment_create(ticket_id=ticket.pk, author=agent, body=f"Internal: {NAME} is on the VPN beta.", internal=True)
    attachment = attachment_create(
        ticket=ticket, uploaded_by=jane, filename="vpn-log.txt", content_type="text/plain", data=b"vpn log lines\n"
    )
    for to in ("open", "in_progress", "resolved"):
        ticket_transition(ticket_id=ticket.pk, actor=agent, to=to)
    ticket_rate(ticket_id=ticket.pk, actor=jane, score=4, comment="Quick, thanks")
    NotificationChannel.objects.create(user=jane, channel="email", target=CHANNEL_EMAIL)
    ticket_notices_expand()
    now = timezone.now()
    SuppressedAddress.objects.create(
        address=EMAIL, reason=f"550 {EMAIL}: mailbox full", created_at=now, last_bounced_at=now
    )
    assert password_reset_take(email=EMAIL, address="10.0.0.9")
    AdminLogEntry.objects.create(
        user=agent,
        content_type=ContentType.objects.get_for_model(jane),
        object_id=str(jane.pk),
        object_repr=str(jane),
        action_flag=CHANGE,
        change_message="[]",
    )
    return Person(user=jane, ticket=ticket, comment=comment, attachment=attachment, message=message)


def run_command(*argv: str) -> int:
    """A manage.py command as a shell runs it, in this process (the test database): its exit status. The test's
    connection stays open (a command run from the shell closes every connection when it ends)."""
    try:
        with patch("django.core.management.base.connections.close_all"):
            ManagementUtility(["manage.py", *argv]).execute()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
