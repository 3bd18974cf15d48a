"""The test servers themselves: mail sent through Django reaches the SMTP capture, and a delivered message is in
the Dovecot mailbox."""

from __future__ import annotations

import os
import smtplib

from django.core.mail import send_mail

from itsm_project.env import parse_email_url
from tests.mail.servers import DovecotMailbox, SmtpCapture


def test_mail_sent_through_django_reaches_the_smtp_capture(smtp_capture: SmtpCapture) -> None:
    send_mail("Grüße [#7]", "Body text\n", "itsm@example.com", ["rita@example.org", "oscar@example.org"])

    (message,) = smtp_capture.messages()
    assert message["Subject"] == "Grüße [#7]"
    assert message.get_content().strip() == "Body text"
    (captured,) = smtp_capture.captured()
    assert captured.mail_from == "itsm@example.com"
    assert captured.rcpt_tos == ["rita@example.org", "oscar@example.org"]


def test_each_test_starts_with_an_empty_smtp_capture(smtp_capture: SmtpCapture) -> None:
    assert smtp_capture.messages() == []
    with smtplib.SMTP(smtp_capture.host, smtp_capture.port, timeout=5) as client:
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: raw\r\n\r\nraw body\r\n")
    assert [m["Subject"] for m in smtp_capture.wait_for(1)] == ["raw"]


def test_the_email_url_in_the_environment_names_the_smtp_capture(smtp_capture: SmtpCapture) -> None:
    parsed = parse_email_url("EMAIL_URL", os.environ["EMAIL_URL"])

    assert (parsed["EMAIL_HOST"], parsed["EMAIL_PORT"]) == ("127.0.0.1", smtp_capture.port)
    assert parsed["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"


def test_a_delivered_message_is_in_the_mailbox(imap_mailbox: DovecotMailbox) -> None:
    first = imap_mailbox.deliver(b"Subject: one\r\n\r\nbody\r\n")
    second = imap_mailbox.deliver(b"Subject: two\r\n\r\nbody\r\n", seen=True)

    assert imap_mailbox.uids() == [first, second]
    assert imap_mailbox.flags(first) == set()
    assert imap_mailbox.flags(second) == {"\\Seen"}
