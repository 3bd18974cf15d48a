"""ImapMailbox against a real Dovecot (tests/mail/conftest.py), and config_from_url for every form it takes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from itsm.mail.imap import (
    FetchedMessage,
    ImapMailbox,
    LoginRefused,
    MailboxConfig,
    MailboxUnavailable,
    OAuth2Client,
    config_from_url,
)
from tests.mail.oauth2 import OAuth2Mailbox
from tests.mail.servers import Dovecot, DovecotMailbox, running_dovecot
from tests.system.processes import free_port


def message(n: int) -> bytes:
    return (
        f"From: rita@example.org\r\nTo: support@itsm.example.com\r\nSubject: Message {n}\r\n\r\nBody {n}\r\n".encode()
    )


def test_uids_after_lists_newer_uids_in_order_up_to_the_limit(imap_mailbox: DovecotMailbox) -> None:
    uids = [imap_mailbox.deliver(message(n)) for n in range(5)]

    with ImapMailbox(imap_mailbox.config) as box:
        assert box.uidvalidity > 0
        assert box.uids_after(0, limit=10) == uids
        assert box.uids_after(uids[1], limit=10) == uids[2:]
        assert box.uids_after(0, limit=2) == uids[:2]
        # "UID n:*" matches the highest UID even when n is above it; uids_after must not.
        assert box.uids_after(uids[-1], limit=10) == []
        assert box.uids_after(uids[-1] + 100, limit=10) == []


def test_the_uidvalidity_is_the_folders(imap_mailbox: DovecotMailbox) -> None:
    imap_mailbox.deliver(message(1))
    with imap_mailbox.client() as client:
        expected = client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"]

    with ImapMailbox(imap_mailbox.config) as box:
        assert box.uidvalidity == expected


def test_fetch_returns_the_raw_messages_without_marking_them_seen(imap_mailbox: DovecotMailbox) -> None:
    first, second = imap_mailbox.deliver(message(1)), imap_mailbox.deliver(message(2))

    with ImapMailbox(imap_mailbox.config) as box:
        fetched = box.fetch([second, first, 999])

    assert fetched == [FetchedMessage(uid=second, raw=message(2)), FetchedMessage(uid=first, raw=message(1))]
    assert imap_mailbox.flags(first) == set()
    assert imap_mailbox.flags(second) == set()


def test_fetch_of_nothing_asks_nothing(imap_mailbox: DovecotMailbox) -> None:
    with ImapMailbox(imap_mailbox.config) as box:
        assert box.fetch([]) == []


def test_mark_seen_sets_the_seen_flag_of_that_message_only(imap_mailbox: DovecotMailbox) -> None:
    first, second = imap_mailbox.deliver(message(1)), imap_mailbox.deliver(message(2))

    with ImapMailbox(imap_mailbox.config) as box:
        box.mark_seen(first)

    assert imap_mailbox.flags(first) == {"\\Seen"}
    assert imap_mailbox.flags(second) == set()


def test_move_to_failed_creates_the_folder_and_moves_the_message(imap_mailbox: DovecotMailbox) -> None:
    first, second, third = (imap_mailbox.deliver(message(n)) for n in range(3))

    with ImapMailbox(imap_mailbox.config) as box:
        box.move_to_failed(first)
        box.move_to_failed(third)

    assert imap_mailbox.uids() == [second]
    assert "ITSM-Failed" in imap_mailbox.folders()
    with imap_mailbox.client("ITSM-Failed") as client:
        moved = client.fetch(client.search(), ["BODY.PEEK[]"])
    assert sorted(data[b"BODY[]"] for data in moved.values()) == [message(0), message(2)]


def test_move_to_failed_uses_an_existing_folder_of_the_configured_name(imap_mailbox: DovecotMailbox) -> None:
    imap_mailbox.deliver(message(0), folder="Broken mail")
    uid = imap_mailbox.deliver(message(1))
    config = dataclasses.replace(imap_mailbox.config, failed_folder="Broken mail")

    with ImapMailbox(config) as box:
        box.move_to_failed(uid)

    assert imap_mailbox.uids() == []
    assert len(imap_mailbox.uids("Broken mail")) == 2


def test_without_move_the_message_is_copied_and_only_its_uid_expunged(
    imap_mailbox: DovecotMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, other_deleted, kept = (imap_mailbox.deliver(message(n)) for n in range(3))
    with imap_mailbox.client() as client:
        client.add_flags([other_deleted], [b"\\Deleted"])
    real = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name != "MOVE" and real(self, name))

    with ImapMailbox(imap_mailbox.config) as box:
        box.move_to_failed(failing)

    with imap_mailbox.client() as client:
        # The other message marked \Deleted (by someone else) is still there: no plain EXPUNGE was sent.
        assert sorted(client.search("ALL")) == [other_deleted, kept]
    assert len(imap_mailbox.uids("ITSM-Failed")) == 1


def test_a_missing_folder_is_mailbox_unavailable(imap_mailbox: DovecotMailbox) -> None:
    config = dataclasses.replace(imap_mailbox.config, folder="Nope")

    with pytest.raises(MailboxUnavailable, match="cannot select IMAP folder 'Nope'"), ImapMailbox(config):
        pass


def test_nothing_listening_is_mailbox_unavailable() -> None:
    config = MailboxConfig(host="127.0.0.1", port=free_port(), security="plain", username="u", password="p", timeout=3)

    with (
        pytest.raises(MailboxUnavailable, match=r"cannot connect to IMAP server 127\.0\.0\.1:\d+: .*refused"),
        ImapMailbox(config),
    ):
        pass


def test_a_broken_connection_is_mailbox_unavailable(imap_mailbox: DovecotMailbox) -> None:
    imap_mailbox.deliver(message(1))

    with ImapMailbox(imap_mailbox.config) as box:
        box.client.shutdown()
        with pytest.raises(MailboxUnavailable, match=r"IMAP search on 127\.0\.0\.1"):
            box.uids_after(0, limit=10)


def tls(dovecot: Dovecot) -> None:
    if not dovecot.tls_port:
        pytest.skip("openssl is not installed: Dovecot runs without TLS")


def test_implicit_tls_refuses_a_certificate_no_trusted_ca_signed(imap_mailbox: DovecotMailbox) -> None:
    tls(imap_mailbox.server)
    config = dataclasses.replace(imap_mailbox.config, security="ssl", port=imap_mailbox.server.tls_port)

    with pytest.raises(MailboxUnavailable, match="CERTIFICATE_VERIFY_FAILED"), ImapMailbox(config):
        pass


@pytest.mark.parametrize(("security", "host"), [("ssl", "localhost"), ("starttls", "127.0.0.1")])
def test_tls_with_the_servers_ca_file_logs_in(imap_mailbox: DovecotMailbox, security: str, host: str) -> None:
    server = imap_mailbox.server
    tls(server)
    uid = imap_mailbox.deliver(message(1))
    config = dataclasses.replace(
        imap_mailbox.config,
        host=host,
        security=security,
        port=server.tls_port if security == "ssl" else server.port,
        ca_file=server.ca_file,
    )

    with ImapMailbox(config) as box:
        assert box.uids_after(0, limit=5) == [uid]


def test_starttls_refuses_a_certificate_no_trusted_ca_signed(imap_mailbox: DovecotMailbox) -> None:
    tls(imap_mailbox.server)
    config = dataclasses.replace(imap_mailbox.config, security="starttls")

    with (
        pytest.raises(MailboxUnavailable, match=r"IMAP STARTTLS with .* failed: .*CERTIFICATE_VERIFY_FAILED"),
        ImapMailbox(config),
    ):
        pass


@pytest.fixture(scope="module")
def dovecot_without_tls() -> Iterator[Dovecot]:
    """A Dovecot of these tests' own: a failed login makes Dovecot delay the next logins from the same address (up
    to 15 s), which must not slow the tests on the shared one."""
    with running_dovecot(tls=False) as server:
        yield server


def test_a_wrong_password_is_mailbox_unavailable_saying_the_login_failed(dovecot_without_tls: Dovecot) -> None:
    mailbox = dovecot_without_tls.mailbox()
    config = dataclasses.replace(mailbox.config, password="wrong")

    with pytest.raises(MailboxUnavailable) as caught, ImapMailbox(config):
        pass

    assert str(caught.value) == (
        f"IMAP login to 127.0.0.1:{dovecot_without_tls.port} as {mailbox.username!r} failed: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    )


def test_starttls_to_a_server_that_does_not_offer_it_is_refused_not_downgraded(dovecot_without_tls: Dovecot) -> None:
    config = dataclasses.replace(dovecot_without_tls.mailbox().config, security="starttls")

    with pytest.raises(MailboxUnavailable, match="does not support STARTTLS"), ImapMailbox(config):
        pass


# --- config_from_url ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "imaps://support%40example.com:p%40ss%3Aw0rd@imap.example.com:993/INBOX",
            ("imap.example.com", 993, "ssl", "support@example.com", "p@ss:w0rd", "INBOX"),
        ),
        ("imaps://u:p@imap.example.com", ("imap.example.com", 993, "ssl", "u", "p", "INBOX")),
        ("imaps://u:p@imap.example.com:1993/", ("imap.example.com", 1993, "ssl", "u", "p", "INBOX")),
        ("imap://u:p@imap.example.com/Support", ("imap.example.com", 143, "starttls", "u", "p", "Support")),
        (
            "IMAP://u:p@imap.example.com:1143/INBOX/Tickets",
            ("imap.example.com", 1143, "starttls", "u", "p", "INBOX/Tickets"),
        ),
        ("imap://u:p@imap.example.com/Service%20Desk", ("imap.example.com", 143, "starttls", "u", "p", "Service Desk")),
        ("imap://u:p@127.0.0.1:1430/INBOX", ("127.0.0.1", 1430, "plain", "u", "p", "INBOX")),
        ("imap://u:p@localhost/INBOX", ("localhost", 143, "plain", "u", "p", "INBOX")),
        ("imap://u:p@[::1]:1430/INBOX", ("::1", 1430, "plain", "u", "p", "INBOX")),
        ("imaps://u:@127.0.0.1/INBOX", ("127.0.0.1", 993, "ssl", "u", "", "INBOX")),
    ],
)
def test_config_from_url_reads_every_form(url: str, expected: tuple[object, ...]) -> None:
    config = config_from_url(url)

    assert (config.host, config.port, config.security, config.username, config.password, config.folder) == expected
    assert (config.failed_folder, config.timeout, config.ca_file) == ("ITSM-Failed", 30.0, "")


def test_config_from_url_takes_the_failed_folder_timeout_and_ca_file_as_options() -> None:
    config = config_from_url("imaps://u:p@imap.example.com/INBOX?failed_folder=Broken&timeout=12.5&ca_file=/etc/ca.pem")

    assert (config.failed_folder, config.timeout, config.ca_file) == ("Broken", 12.5, "/etc/ca.pem")


def test_the_password_is_not_in_the_configs_repr() -> None:
    assert "s3cret" not in repr(config_from_url("imaps://u:s3cret@imap.example.com/INBOX"))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pop3://u:p@mail.example.com/", "starts with imaps:// or imap://, not 'pop3://'"),
        ("imap.example.com", "starts with imaps:// or imap://"),
        ("imaps:///INBOX", "has no host"),
        ("imaps://imap.example.com/INBOX", "needs a user name and a password"),
        ("imaps://u@imap.example.com/INBOX", "needs a user name and a password"),
        ("imaps://u:p@imap.example.com:99999/INBOX", "invalid port"),
        ("imaps://u:p@imap.example.com:abc/INBOX", "invalid port"),
        ("imaps://u:p@imap.example.com/INBOX?tls=false", "unknown options: tls"),
        ("imaps://u:p@imap.example.com/INBOX?timeout=soon", "timeout is not a number of seconds"),
        ("imaps://u:p@imap.example.com/INBOX?timeout=0", "timeout must be positive"),
        ("imaps://u:p@imap.example.com/Failed?failed_folder=Failed", "two different, non-empty names"),
    ],
)
def test_config_from_url_says_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
        config_from_url(url)


@pytest.mark.parametrize("host", ["imap.example.com", "192.0.2.10", "10.0.0.5", "localhost.example.com"])
def test_plain_imap_to_a_host_other_than_loopback_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match=f"without TLS is allowed only to a loopback address, not to '{host}'"):
        MailboxConfig(host=host, port=143, security="plain", username="u", password="p")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_plain_imap_to_loopback_is_allowed(host: str) -> None:
    assert MailboxConfig(host=host, port=143, security="plain", username="u", password="p").security == "plain"


def test_an_unknown_security_is_refused() -> None:
    with pytest.raises(ValueError, match="must be one of ssl, starttls, plain, not 'tls'"):
        MailboxConfig(host="imap.example.com", port=993, security="tls", username="u", password="p")


# --- OAuth2 sign-in in the URL and the config ---------------------------------------------------------------------
MS365 = (
    "imaps://support%40example.com@outlook.office365.com/INBOX?auth=oauth2&client_id=0f1e-app"
    "&token_url=https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token&scope=https://outlook.office365.com/.default"
)


def test_config_from_url_reads_an_oauth2_sign_in_with_the_secret_given_apart() -> None:
    config = config_from_url(MS365, oauth2_client_secret="s3cret~value")

    assert (config.host, config.port, config.security, config.username, config.password) == (
        "outlook.office365.com",
        993,
        "ssl",
        "support@example.com",
        "",
    )
    assert config.oauth2 == OAuth2Client(
        token_url="https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token",
        client_id="0f1e-app",
        client_secret="s3cret~value",
        scope="https://outlook.office365.com/.default",
    )
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("url", "secret", "message"),
    [
        (MS365, "", "signs in with OAuth2, but ITSM_MAIL_OAUTH2_CLIENT_SECRET is not set"),
        (MS365.replace("support%40example.com@", "support%40example.com:pw@"), "s", "names the mailbox's user and no"),
        (MS365.replace("support%40example.com@", ""), "s", "names the mailbox's user and no password"),
        (MS365.replace("&client_id=0f1e-app", ""), "s", "needs token_url=… and client_id=…"),
        (
            MS365.replace("auth=oauth2", "auth=kerberos"),
            "s",
            "auth is password (the default) or oauth2, not 'kerberos'",
        ),
        ("imaps://u:p@imap.example.com/INBOX?client_id=x&scope=y", "", "client_id, scope go with auth=oauth2"),
        (MS365.replace("token_url=https://", "token_url=http://"), "s", "must use https:// (http:// only to a loop"),
        (MS365.replace("token_url=https://", "token_url=ftp://"), "s", "must be an https:// URL, not 'ftp://"),
        (MS365.replace("token_url=https://", "token_url=https://app:pw@"), "s", "must not hold credentials"),
    ],
)
def test_config_from_url_says_what_is_wrong_with_an_oauth2_sign_in(url: str, secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        config_from_url(url, oauth2_client_secret=secret)


def test_a_token_url_on_loopback_may_be_plain_http() -> None:
    client = OAuth2Client(token_url="http://127.0.0.1:8080/token", client_id="c", client_secret="s")

    assert client.scope == ""


def test_a_config_signs_in_with_a_password_or_oauth2_not_both() -> None:
    client = OAuth2Client(token_url="https://login.example.com/token", client_id="c", client_secret="s")

    with pytest.raises(ValueError, match="with a password or with OAuth2, not both"):
        MailboxConfig(host="imap.example.com", port=993, security="ssl", username="u", password="p", oauth2=client)


def test_an_oauth2_config_without_a_token_is_not_signed_in(imap_mailbox: DovecotMailbox) -> None:
    client = OAuth2Client(token_url="http://127.0.0.1:1/token", client_id="c", client_secret="s")
    config = dataclasses.replace(imap_mailbox.config, password="", oauth2=client)

    with pytest.raises(MailboxUnavailable, match="no access token was fetched"), ImapMailbox(config):
        pass


def test_a_server_without_xoauth2_is_told_apart_from_a_refused_token(imap_mailbox: DovecotMailbox) -> None:
    client = OAuth2Client(token_url="http://127.0.0.1:1/token", client_id="c", client_secret="s")
    config = dataclasses.replace(imap_mailbox.config, password="", oauth2=client, oauth2_token="t")

    with pytest.raises(MailboxUnavailable, match=r"does not offer OAuth2 sign-in \(AUTH=XOAUTH2\)") as caught:
        ImapMailbox(config).open()
    assert not isinstance(caught.value, LoginRefused)


@pytest.mark.slow
def test_imap_mailbox_signs_in_with_an_access_token_of_the_provider(oauth2_mailbox: OAuth2Mailbox) -> None:
    uid = oauth2_mailbox.imap.deliver(message(1))
    client = OAuth2Client(
        token_url=oauth2_mailbox.provider.token_url, client_id=oauth2_mailbox.client.client_id, client_secret="-"
    )
    config = dataclasses.replace(
        oauth2_mailbox.imap.config,
        password="",
        oauth2=client,
        oauth2_token=oauth2_mailbox.provider.token(oauth2_mailbox.client),
    )

    with ImapMailbox(config) as box:
        assert box.uids_after(0, limit=10) == [uid]
