"""How a ticket's mail threads: Message-IDs that name the ticket (`itsm.t<id>.<random>@<domain>`), one stable
thread root per ticket for References, and the `[#<id>]` subject tag that survives clients which drop the
References header. All ids are without <>."""

from __future__ import annotations

import re
import secrets

_TAG = re.compile(r"\[#\s*(\d{1,18})\s*\]")
_OUR_ID = re.compile(r"^itsm\.t(\d{1,18})(?:\.[0-9a-f]+)?@(.+)$")
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


def _domain(domain: str) -> str:
    value = domain.strip().lower()
    if not _DOMAIN.match(value):
        raise ValueError(f"not a domain name for a Message-ID: {domain!r}")
    return value


def _ticket(ticket_id: int) -> int:
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or ticket_id <= 0:
        raise ValueError(f"a ticket id is a positive integer, not {ticket_id!r}")
    return ticket_id


def make_message_id(*, ticket_id: int, domain: str) -> str:
    """A new, unique Message-ID for a message about the ticket: `itsm.t123.<16 hex digits>@domain`."""
    return f"itsm.t{_ticket(ticket_id)}.{secrets.token_hex(8)}@{_domain(domain)}"


def ticket_thread_root(*, ticket_id: int, domain: str) -> str:
    """The ticket's thread root, `itsm.t123@domain`: the same for every message of the ticket, so that clients
    which thread by References put them together."""
    return f"itsm.t{_ticket(ticket_id)}@{_domain(domain)}"


def ticket_id_from_message_id(message_id: str, *, domain: str) -> int | None:
    """The ticket named by one of our Message-IDs (from `make_message_id` or `ticket_thread_root`) at `domain`;
    None for any other id."""
    found = _OUR_ID.match(message_id.strip().strip("<>").lower())
    if not found or found.group(2) != _domain(domain):
        return None
    return int(found.group(1)) or None


def subject_tag(ticket_id: int) -> str:
    return f"[#{_ticket(ticket_id)}]"


def tagged_subject(ticket_id: int, subject: str) -> str:
    """`subject` (whitespace collapsed) with the ticket's tag in front, unless it already carries this ticket's tag
    anywhere ("Re: [#123] x" stays as it is)."""
    tag = subject_tag(ticket_id)
    subject = " ".join(subject.split())
    if any(int(found) == ticket_id for found in _TAG.findall(subject)):
        return subject
    return f"{tag} {subject}" if subject else tag


def ticket_id_from_subject(subject: str) -> int | None:
    """The ticket of the first `[#123]` tag anywhere in the subject; None without one."""
    for found in _TAG.findall(subject):
        if int(found) > 0:
            return int(found)
    return None
