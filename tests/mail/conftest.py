"""Mail servers for tests.

- `imap_mailbox`: an empty INBOX of a new user on a Dovecot shared by the session (skipped when Dovecot is not
  installed). `imap_mailbox.deliver(raw)` appends a message and returns its UID; `imap_mailbox.config` is the
  MailboxConfig to open it with, `imap_mailbox.url` the same as an imap:// URL. A failed login makes Dovecot
  delay the next logins from 127.0.0.1 for up to 15 s: test wrong passwords on a `running_dovecot()` of your own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mail.servers import Dovecot, DovecotMailbox, running_dovecot


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def imap_mailbox(dovecot: Dovecot) -> DovecotMailbox:
    return dovecot.mailbox()
