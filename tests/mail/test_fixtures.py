"""The test servers themselves: a delivered message is in the Dovecot mailbox."""

from __future__ import annotations

from tests.mail.servers import DovecotMailbox


def test_a_delivered_message_is_in_the_mailbox(imap_mailbox: DovecotMailbox) -> None:
    first = imap_mailbox.deliver(b"Subject: one\r\n\r\nbody\r\n")
    second = imap_mailbox.deliver(b"Subject: two\r\n\r\nbody\r\n", seen=True)

    assert imap_mailbox.uids() == [first, second]
    assert imap_mailbox.flags(first) == set()
    assert imap_mailbox.flags(second) == {"\\Seen"}
