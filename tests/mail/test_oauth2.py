"""Mailboxes that sign in with OAuth2 (SASL XOAUTH2), against real servers: oidc-provider hands out the access
tokens by the client-credentials grant, and Dovecot asks it about every token it is given (RFC 7662), so a token
that opens the mailbox is one the provider issued for it and still holds valid (tests/mail/oauth2.py)."""

from __future__ import annotations

import logging
import subprocess
import time
from email.message import EmailMessage
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from itsm.models import Mailbox, Ticket
from itsm.services.mail_oauth2 import mail_oauth2_token
from itsm.services.mail_polling import mailbox_config, mailbox_poll
from tests.mail.conftest import SCOPE
from tests.mail.oauth2 import OAuth2Mailbox, OAuth2Provider
from tests.mail.servers import running_dovecot
from tests.system.processes import PYTHON, ROOT, base_env, current_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def mail(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "oscar@example.com"
    message["To"] = "support@itsm.example.com"
    message["Subject"] = subject
    message.set_content("Since this morning.")
    return bytes(message)


def inbox_url(mailbox: OAuth2Mailbox) -> str:
    return (
        f"imap://{mailbox.imap.username}@127.0.0.1:{mailbox.imap.server.port}/INBOX?auth=oauth2"
        f"&token_url={mailbox.provider.token_url}&client_id={quote(mailbox.client.client_id)}&scope={SCOPE}"
    )


def assert_nowhere(secret: str, *texts: str) -> None:
    """`secret` is in no row of the database and in none of `texts` (logs, command output)."""
    rows = StringIO()
    call_command("dumpdata", "itsm", stdout=rows)
    assert secret not in rows.getvalue(), "the secret is in the database"
    for text in texts:
        assert secret not in text, f"the secret is in {text[:200]!r}"


def xoauth2_logins(mailbox: OAuth2Mailbox) -> int:
    log = Path(mailbox.imap.server.log).read_text()
    return log.count(f"Login: user=<{mailbox.imap.username}>, method=XOAUTH2")


def test_a_mailbox_signing_in_with_oauth2_turns_mail_into_a_ticket(
    oauth2_mailbox: OAuth2Mailbox, make_oauth2_mailbox, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    oauth2_mailbox.imap.deliver(mail("VPN is down"))
    mailbox = make_oauth2_mailbox(oauth2_mailbox)

    counts = mailbox_poll(mailbox_id=mailbox.pk)

    assert (counts["received"], counts["new_tickets"], counts.get("error")) == (1, 1, None)
    assert Ticket.objects.get().title == "VPN is down"
    mailbox.refresh_from_db()
    assert (mailbox.last_error, mailbox.last_uid) == ("", 1)
    assert mailbox.last_success_at is not None
    # The next poll signs in again with the token the process holds: one token, two sign-ins.
    assert mailbox_poll(mailbox_id=mailbox.pk)["received"] == 0
    assert (oauth2_mailbox.provider.issued(oauth2_mailbox.client), xoauth2_logins(oauth2_mailbox)) == (1, 2)
    token = mail_oauth2_token(client=mailbox_config(mailbox).oauth2, timeout=10)  # type: ignore[arg-type]
    assert token.held
    assert oauth2_mailbox.provider.introspect(token.value)["username"] == oauth2_mailbox.imap.username
    assert_nowhere(oauth2_mailbox.client.client_secret, caplog.text)
    assert_nowhere(token.value, caplog.text)


def test_the_url_setting_signs_in_with_oauth2_and_its_row_shows_how_without_the_secret(
    oauth2_mailbox: OAuth2Mailbox, settings, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    settings.ITSM_MAIL_INBOX_URL = inbox_url(oauth2_mailbox)
    settings.ITSM_MAIL_OAUTH2_CLIENT_SECRET = oauth2_mailbox.client.client_secret
    oauth2_mailbox.imap.deliver(mail("Printer jams"))
    out = StringIO()

    call_command("fetch_mail", stdout=out)

    assert out.getvalue().strip() == (
        "ITSM_MAIL_INBOX_URL: received 1, new tickets 1, replies threaded 0, ignored 0, refused 0, failed 0, "
        "done before 0"
    )
    row = Mailbox.objects.get()
    assert (row.from_environment, row.auth, row.username) == (True, "oauth2", oauth2_mailbox.imap.username)
    assert (row.oauth2_token_url, row.oauth2_client_id, row.oauth2_scope) == (
        oauth2_mailbox.provider.token_url,
        oauth2_mailbox.client.client_id,
        SCOPE,
    )
    assert_nowhere(oauth2_mailbox.client.client_secret, caplog.text, out.getvalue())


def test_a_wrong_client_secret_is_a_clear_error_on_the_mailbox_and_fetch_mail_exits_1(
    oauth2_mailbox: OAuth2Mailbox, make_oauth2_mailbox, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng~secret.from-an-old-copy"
    oauth2_mailbox.imap.deliver(mail("Printer jams"))
    make_oauth2_mailbox(oauth2_mailbox, secret=wrong)
    err = StringIO()

    with pytest.raises(CommandError, match=r"^1 mailbox\(es\) could not be read: support\.$"):
        call_command("fetch_mail", stdout=StringIO(), stderr=err)

    expected = (
        f"MailboxUnavailable: the OAuth2 token endpoint {oauth2_mailbox.provider.token_url} refused client "
        f"'{oauth2_mailbox.client.client_id}': invalid_client (client authentication failed) (HTTP 401)"
    )
    assert Mailbox.objects.get().last_error == expected
    assert err.getvalue() == f"support: could not be read: {expected}\n"
    assert Ticket.objects.count() == 0
    assert xoauth2_logins(oauth2_mailbox) == 0  # no token, no sign-in
    assert_nowhere(wrong, caplog.text, err.getvalue())


@pytest.mark.django_db(transaction=True)
def test_fetch_mail_with_a_wrong_client_secret_exits_1_with_a_sentence_not_a_traceback(
    oauth2_mailbox: OAuth2Mailbox, tmp_path: Path
):
    wrong = "Wr0ng~secret.in-the-environment"
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=str(django_settings.REDIS_URL),
        ITSM_VAR_DIR=str(tmp_path / "var"),
        ITSM_MAIL_INBOX_URL=inbox_url(oauth2_mailbox),
        ITSM_MAIL_OAUTH2_CLIENT_SECRET=wrong,
        ITSM_LOG_LEVEL="DEBUG",
    )

    done = subprocess.run(
        [PYTHON, "manage.py", "fetch_mail"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr  # log lines go to stdout
    assert (
        f"ITSM_MAIL_INBOX_URL: could not be read: MailboxUnavailable: the OAuth2 token endpoint "
        f"{oauth2_mailbox.provider.token_url} refused client '{oauth2_mailbox.client.client_id}': invalid_client"
    ) in done.stderr
    assert done.stderr.rstrip().endswith("CommandError: 1 mailbox(es) could not be read: ITSM_MAIL_INBOX_URL.")
    assert_nowhere(wrong, done.stdout, done.stderr)


def test_an_expired_token_is_not_offered_again(oauth2_mailbox: OAuth2Mailbox, make_oauth2_mailbox):
    provider = oauth2_mailbox.provider
    short = OAuth2Mailbox(oauth2_mailbox.imap, provider.register(oauth2_mailbox.imap.username, token_ttl=3), provider)
    mailbox = make_oauth2_mailbox(short)
    assert "error" not in mailbox_poll(mailbox_id=mailbox.pk)
    first = mail_oauth2_token(client=mailbox_config(mailbox).oauth2, timeout=10)  # type: ignore[arg-type]
    assert first.held
    time.sleep(3.2)
    assert provider.introspect(first.value) == {"active": False}
    short.imap.deliver(mail("Expired"))

    counts = mailbox_poll(mailbox_id=mailbox.pk)

    assert (counts["new_tickets"], counts.get("error")) == (1, None)
    # Renewed before signing in, not after a refusal: two tokens, two sign-ins, no failed one.
    assert (provider.issued(short.client), xoauth2_logins(short)) == (2, 2)
    assert f"user=<{short.imap.username}>, method=XOAUTH2" not in _failed_sign_ins(short)


def test_a_revoked_token_is_replaced_within_the_same_poll(oauth2_provider: OAuth2Provider, make_oauth2_mailbox):
    # A refused sign-in makes Dovecot slow down the next ones: this test has a Dovecot of its own.
    with running_dovecot(tls=False, introspection_url=oauth2_provider.introspection_url) as dovecot:
        imap = dovecot.mailbox()
        revoked = OAuth2Mailbox(imap, oauth2_provider.register(imap.username), oauth2_provider)
        mailbox = make_oauth2_mailbox(revoked)
        assert "error" not in mailbox_poll(mailbox_id=mailbox.pk)
        held = mail_oauth2_token(client=mailbox_config(mailbox).oauth2, timeout=10)  # type: ignore[arg-type]
        oauth2_provider.revoke(revoked.client, held.value)
        imap.deliver(mail("After the revocation"))

        counts = mailbox_poll(mailbox_id=mailbox.pk)

        assert (counts["new_tickets"], counts.get("error")) == (1, None)
        assert oauth2_provider.issued(revoked.client) == 2
        assert xoauth2_logins(revoked) == 2
        assert f"user=<{imap.username}>, method=XOAUTH2" in _failed_sign_ins(revoked)  # the revoked token's
    mailbox.refresh_from_db()
    assert mailbox.last_error == ""


def test_a_token_the_imap_server_refuses_is_a_clear_error_and_not_renewed_in_a_loop(
    oauth2_provider: OAuth2Provider, make_oauth2_mailbox
):
    with running_dovecot(tls=False, introspection_url=oauth2_provider.introspection_url) as dovecot:
        imap = dovecot.mailbox()
        # An app granted another mailbox: the provider issues its tokens, Dovecot refuses them for this one.
        elsewhere = OAuth2Mailbox(imap, oauth2_provider.register("someone-else"), oauth2_provider)
        mailbox = make_oauth2_mailbox(elsewhere)

        counts = mailbox_poll(mailbox_id=mailbox.pk)

    assert counts["error"] == (
        f"LoginRefused: IMAP OAuth2 sign-in (XOAUTH2) to 127.0.0.1:{dovecot.port} as '{imap.username}' failed: "
        f"[AUTHENTICATIONFAILED] Authentication failed. (the server refused the access token of client "
        f"'{elsewhere.client.client_id}': expired or revoked, or the app was not granted this mailbox)"
    )
    mailbox.refresh_from_db()
    assert mailbox.last_error == counts["error"]
    assert oauth2_provider.issued(elsewhere.client) == 1  # a token just issued and refused is not asked for again


def _failed_sign_ins(mailbox: OAuth2Mailbox) -> str:
    log = Path(mailbox.imap.server.log).read_text()
    return "\n".join(line for line in log.splitlines() if "auth failed" in line)
