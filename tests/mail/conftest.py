"""Mail servers for tests, and the message corpus.

- `imap_mailbox`: an empty INBOX of a new user on a Dovecot shared by the session (skipped when Dovecot is not
  installed). `imap_mailbox.deliver(raw)` appends a message and returns its UID; `imap_mailbox.config` is the
  MailboxConfig to open it with, `imap_mailbox.url` the same as an imap:// URL. A failed login makes Dovecot
  delay the next logins from 127.0.0.1 for up to 15 s: test wrong passwords on a `running_dovecot()` of your own.
- `smtp_capture`: an SMTP server on loopback that keeps what it receives, with Django's e-mail settings (and the
  EMAIL_URL environment variable, for processes a test starts) pointed at it. `smtp_capture.messages()` are the
  received messages as `email.message.EmailMessage`, `smtp_capture.captured()` the envelopes with the raw bytes.
- `oauth2_provider`: an OAuth2 authorization server (oidc-provider, tests/mail/oauth2.py) shared by the session;
  `oauth2_dovecot`: a Dovecot that also takes XOAUTH2 sign-ins, asking that provider about each token;
  `oauth2_mailbox`: an empty INBOX there with a client of its own registered at the provider, whose access tokens
  open it; `make_oauth2_mailbox(oauth2_mailbox)` its Mailbox row, the client secret in an environment variable.
  A refused token makes Dovecot delay the next sign-ins too: test refusals on a `running_dovecot()` of your own.
- `eml(name)`: the bytes of tests/mail/messages/<name>.eml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mail.oauth2 import OAuth2Mailbox, OAuth2Provider
from tests.mail.servers import Dovecot, DovecotMailbox, SmtpCapture, running_dovecot

MESSAGES = Path(__file__).parent / "messages"
# The scope a Microsoft 365 mailbox asks for; the test provider takes any scope.
SCOPE = "https://outlook.office365.com/.default"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def imap_mailbox(dovecot: Dovecot) -> DovecotMailbox:
    return dovecot.mailbox()


@pytest.fixture(scope="session")
def _smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpCapture]:
    server = SmtpCapture(tmp_path_factory.mktemp("smtp") / "received")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_capture(_smtp_server: SmtpCapture, settings: Any, monkeypatch: pytest.MonkeyPatch) -> SmtpCapture:
    _smtp_server.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = _smtp_server.host
    settings.EMAIL_PORT = _smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    monkeypatch.setenv("EMAIL_URL", _smtp_server.url)
    return _smtp_server


@pytest.fixture
def eml() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (MESSAGES / f"{name}.eml").read_bytes()

    return read


@pytest.fixture
def make_mailbox(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """A Mailbox row for a test mailbox, its password in an environment variable as an operator would set it."""

    def make(imap: DovecotMailbox, **fields: Any) -> Any:
        from itsm.models import Mailbox

        monkeypatch.setenv("TEST_MAILBOX_PASSWORD", imap.password)
        values = {
            "name": "support",
            "host": "127.0.0.1",
            "port": imap.server.port,
            "security": Mailbox.Security.PLAIN,
            "username": imap.username,
            "password_env": "TEST_MAILBOX_PASSWORD",
        }
        return Mailbox.objects.create(**{**values, **fields})

    return make


@pytest.fixture(scope="session")
def oauth2_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuth2Provider]:
    provider = OAuth2Provider(tmp_path_factory.mktemp("oauth2"))
    try:
        yield provider.start()
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def oauth2_dovecot(oauth2_provider: OAuth2Provider) -> Iterator[Dovecot]:
    with running_dovecot(tls=False, introspection_url=oauth2_provider.introspection_url) as server:
        yield server


@pytest.fixture
def oauth2_mailbox(oauth2_dovecot: Dovecot, oauth2_provider: OAuth2Provider) -> OAuth2Mailbox:
    imap = oauth2_dovecot.mailbox()
    return OAuth2Mailbox(imap, oauth2_provider.register(imap.username), oauth2_provider)


@pytest.fixture
def make_oauth2_mailbox(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """A Mailbox row that signs in with OAuth2 as the client of `mailbox`; its client secret (or `secret`) in an
    environment variable as an operator would set it."""

    def make(mailbox: OAuth2Mailbox, *, secret: str | None = None, **fields: Any) -> Any:
        from itsm.models import Mailbox

        monkeypatch.setenv("TEST_MAILBOX_CLIENT_SECRET", mailbox.client.client_secret if secret is None else secret)
        values = {
            "name": "support",
            "host": "127.0.0.1",
            "port": mailbox.imap.server.port,
            "security": Mailbox.Security.PLAIN,
            "username": mailbox.imap.username,
            "auth": Mailbox.Auth.OAUTH2,
            "oauth2_token_url": mailbox.provider.token_url,
            "oauth2_client_id": mailbox.client.client_id,
            "oauth2_scope": SCOPE,
            "password_env": "TEST_MAILBOX_CLIENT_SECRET",
        }
        return Mailbox.objects.create(**{**values, **fields})

    return make
