"""What an operator uses: `manage.py fetch_mail`, the mailbox of ITSM_MAIL_INBOX_URL, the every-minute job, the
admin's mailboxes (intake off, poll now) and message log (retry), and the metrics."""

from __future__ import annotations

from email.message import EmailMessage
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY

from itsm.models import InboundMessage, JobRun, Mailbox, Ticket
from itsm.tasks import poll_mail
from tests.system.processes import free_port

pytestmark = pytest.mark.django_db


def mail(subject: str = "Printer jams") -> bytes:
    message = EmailMessage()
    message["From"] = "oscar@example.com"
    message["To"] = "support@itsm.example.com"
    message["Subject"] = subject
    message.set_content("It jams.")
    return bytes(message)


def fetch_mail(*args: str) -> str:
    out = StringIO()
    call_command("fetch_mail", *args, stdout=out)
    return out.getvalue()


def test_fetch_mail_says_that_intake_is_off_without_a_mailbox(settings):
    settings.ITSM_MAIL_INBOX_URL = ""
    assert fetch_mail().startswith("Mail intake is off: no mailbox is enabled.")


def test_the_mailbox_of_the_url_setting_is_read_and_its_state_kept(settings, imap_mailbox):
    settings.ITSM_MAIL_INBOX_URL = imap_mailbox.url
    imap_mailbox.deliver(mail())
    output = fetch_mail()
    assert output.strip() == (
        "ITSM_MAIL_INBOX_URL: received 1, new tickets 1, replies threaded 0, ignored 0, refused 0, failed 0, "
        "done before 0"
    )
    mailbox = Mailbox.objects.get()
    assert (mailbox.from_environment, mailbox.username, mailbox.last_uid, mailbox.last_error) == (
        True,
        imap_mailbox.username,
        1,
        "",
    )
    assert mailbox.last_success_at is not None
    assert imap_mailbox.password not in str(Mailbox.objects.values().get())  # the password is never stored
    sample = REGISTRY.get_sample_value("itsm_mail_last_poll_success_timestamp_seconds", {"mailbox": mailbox.name})
    assert sample == pytest.approx(mailbox.last_success_at.timestamp())
    assert fetch_mail().startswith("ITSM_MAIL_INBOX_URL: received 0,")
    settings.ITSM_MAIL_INBOX_URL = ""
    assert fetch_mail().startswith("Mail intake is off")  # the URL's mailbox is switched off with the setting
    assert not Mailbox.objects.get().enabled


def test_a_mailbox_that_cannot_be_reached_is_a_clear_error_and_a_non_zero_exit(settings, monkeypatch):
    settings.ITSM_MAIL_INBOX_URL = ""
    monkeypatch.setenv("DESK_PASSWORD", "secret")
    Mailbox.objects.create(
        name="desk", host="127.0.0.1", port=free_port(), security="plain", username="desk", password_env="DESK_PASSWORD"
    )
    err = StringIO()
    with pytest.raises(CommandError, match=r"1 mailbox\(es\) could not be read: desk\."):
        call_command("fetch_mail", stdout=StringIO(), stderr=err)
    assert err.getvalue().startswith("desk: could not be read: MailboxUnavailable: ")
    assert Mailbox.objects.get().last_error.startswith("MailboxUnavailable: ")
    with pytest.raises(CommandError, match="There is no mailbox 'nope' \\(mailboxes: desk\\)"):
        fetch_mail("--mailbox", "nope")


def test_a_mailbox_without_a_password_says_so(settings):
    settings.ITSM_MAIL_INBOX_URL = ""
    Mailbox.objects.create(name="desk", host="127.0.0.1", port=993, username="desk")
    with pytest.raises(CommandError):
        call_command("fetch_mail", stdout=StringIO(), stderr=StringIO())
    assert Mailbox.objects.get().last_error == "ValueError: no password file or environment variable is configured"


def test_the_every_minute_job_polls_once_per_slot(settings, imap_mailbox):
    settings.ITSM_MAIL_INBOX_URL = imap_mailbox.url
    imap_mailbox.deliver(mail())
    detail = poll_mail()
    assert detail is not None
    assert detail["mailboxes"]["ITSM_MAIL_INBOX_URL"]["new_tickets"] == 1
    assert poll_mail() is None  # the same minute
    assert JobRun.objects.get(job="poll_mail").status == JobRun.Status.SUCCEEDED


def test_the_admin_says_when_intake_is_off_and_retries_a_failed_message(operator, settings, imap_mailbox):
    settings.ITSM_MAIL_INBOX_URL = ""
    page = operator.get("/admin/itsm/mailbox/", follow=True).content.decode()
    assert "Mail intake is off" in page
    settings.ITSM_MAIL_INBOX_URL = imap_mailbox.url
    settings.ITSM_MAIL_MAX_BYTES = 50
    imap_mailbox.deliver(mail())
    fetch_mail()
    failed = InboundMessage.objects.get(status=InboundMessage.Status.FAILED)
    log = operator.get("/admin/itsm/inboundmessage/").content.decode()
    assert "failed (could not be read)" in log
    settings.ITSM_MAIL_MAX_BYTES = 10_000_000
    response = operator.post(
        "/admin/itsm/inboundmessage/", {"action": "retry", "_selected_action": [failed.pk]}, follow=True
    )
    assert "opened a ticket" in response.content.decode()
    assert Ticket.objects.count() == 1
    detail = operator.get(f"/admin/itsm/inboundmessage/{InboundMessage.objects.get().pk}/change/").content.decode()
    assert "Subject: Printer jams" in detail  # the message as received


def test_an_agent_reads_the_message_log_but_cannot_retry(agent, client):
    client.force_login(agent)
    assert client.get("/admin/itsm/inboundmessage/").status_code == 200
    assert client.get("/admin/itsm/mailbox/").status_code == 403


def test_a_mailbox_reads_its_password_from_a_file(settings, imap_mailbox, tmp_path):
    settings.ITSM_MAIL_INBOX_URL = ""
    secret = tmp_path / "password"
    secret.write_text(imap_mailbox.password + "\n")
    Mailbox.objects.create(
        name="desk",
        host="127.0.0.1",
        port=imap_mailbox.server.port,
        security="plain",
        username=imap_mailbox.username,
        password_file=str(secret),
    )
    imap_mailbox.deliver(mail())
    assert "new tickets 1" in fetch_mail()


def test_the_admin_sets_up_a_mailbox_that_signs_in_with_oauth2(operator):
    page = operator.get("/admin/itsm/mailbox/add/").content.decode()
    assert all(words in page for words in ("Sign-in", "Sign in with", "Secret file", "OAuth2", "Token URL", "Scope"))
    form = {
        "name": "Microsoft 365",
        "enabled": "on",
        "host": "outlook.office365.com",
        "port": "993",
        "security": "ssl",
        "username": "support@example.com",
        "auth": "oauth2",
        "password_env": "M365_CLIENT_SECRET",
        "folder": "INBOX",
        "failed_folder": "ITSM-Failed",
        "priority": "medium",
    }
    refused = operator.post("/admin/itsm/mailbox/add/", form).content.decode()
    assert "Signing in with OAuth2 needs a token URL and a client id." in refused
    microsoft = {
        "oauth2_token_url": "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token",
        "oauth2_client_id": "0f1e2d3c-app",
        "oauth2_scope": "https://outlook.office365.com/.default",
    }
    assert operator.post("/admin/itsm/mailbox/add/", {**form, **microsoft}).status_code == 302
    mailbox = Mailbox.objects.get()
    assert (mailbox.auth, mailbox.oauth2_client_id, mailbox.password_env) == (
        "oauth2",
        "0f1e2d3c-app",
        "M365_CLIENT_SECRET",
    )


def test_an_oauth2_mailbox_without_its_secret_says_which_is_missing(settings):
    settings.ITSM_MAIL_INBOX_URL = ""
    Mailbox.objects.create(
        name="m365",
        host="outlook.office365.com",
        username="support@example.com",
        auth="oauth2",
        oauth2_token_url="https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token",
        oauth2_client_id="app",
    )
    with pytest.raises(CommandError):
        call_command("fetch_mail", stdout=StringIO(), stderr=StringIO())
    assert Mailbox.objects.get().last_error == "ValueError: no client secret file or environment variable is configured"
