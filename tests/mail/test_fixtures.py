"""The test servers themselves: mail sent through Django reaches the SMTP capture, a delivered message is in the
Dovecot mailbox, and an access token of the OAuth2 provider opens its mailbox on the Dovecot that asks it."""

from __future__ import annotations

import os
import smtplib

import pytest
from django.core.mail import send_mail
from imapclient import IMAPClient

from itsm_project.env import parse_email_url
from tests.mail.oauth2 import OAuth2Mailbox
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


@pytest.mark.slow
def test_a_token_of_the_oauth2_provider_opens_its_mailbox_over_xoauth2(oauth2_mailbox: OAuth2Mailbox) -> None:
    uid = oauth2_mailbox.imap.deliver(b"Subject: one\r\n\r\nbody\r\n")
    token = oauth2_mailbox.provider.token(oauth2_mailbox.client)

    # Dovecot asks the provider about the token and takes it for the user the provider names.
    introspected = oauth2_mailbox.provider.introspect(token)
    assert (introspected["active"], introspected["username"]) == (True, oauth2_mailbox.imap.username)
    client = IMAPClient("127.0.0.1", port=oauth2_mailbox.imap.server.port, ssl=False, timeout=10)
    try:
        assert b"AUTH=XOAUTH2" in client.capabilities()
        client.oauth2_login(oauth2_mailbox.imap.username, token)
        client.select_folder("INBOX")
        assert client.search() == [uid]
    finally:
        client.logout()
    assert oauth2_mailbox.provider.issued(oauth2_mailbox.client) == 1
