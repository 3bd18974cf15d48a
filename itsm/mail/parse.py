"""One raw RFC 5322 message in, a `ParsedMail` out: addresses, thread ids, the decoded subject, the readable text
(HTML converted by inscriptis when there is no text part), attachments, whether a machine sent it and, for a
bounce, who failed. Only a message that cannot be read at all raises (`MailParseError`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

from itsm.mail.automatic import Bounce, automatic_reason, find_bounce
from itsm.mail.parts import clean, collapse, contents, header, safe_filename

__all__ = ["Bounce", "MailAttachment", "MailParseError", "ParsedMail", "html_to_text", "parse_mail"]

# The headers of which a message needs at least one to be taken for an e-mail at all.
_MESSAGE_HEADERS = ("from", "sender", "to", "subject", "date", "message-id", "mime-version", "received")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# "strict" keeps block elements flush left; inscriptis's default ("relaxed") indents nested divs, which Outlook's
# HTML is made of.
_HTML_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])


@dataclass(frozen=True)
class MailAttachment:
    """A file sent with a message, or an inline image with a file name."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ParsedMail:
    """What the platform reads from one received message. Addresses are lowercased, ids are without <>."""

    message_id: str
    in_reply_to: list[str]
    references: list[str]
    sender: str
    sender_name: str
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    html: str
    attachments: list[MailAttachment]
    auto_generated: str
    bounce: Bounce | None
    date: datetime | None
    size: int
    # The Reply-To addresses, lowercased ([] when absent): where the sender wants answers to go.
    reply_to: list[str] = field(default_factory=list)


class MailParseError(Exception):
    """The message cannot be read at all: empty, not an e-mail message, or larger than allowed."""


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: no tags, no scripts or styles, block elements on lines of their own."""
    if not html.strip():
        return ""
    try:
        text = get_text(html, _HTML_CONFIG)
    except Exception:
        # lxml refuses some inputs outright (e.g. nothing but a processing instruction); there is no text then.
        return ""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lowercased address) of each address in every `name` header."""
    found: list[tuple[str, str]] = []
    try:
        for value in message.get_all(name) or []:
            parsed = getattr(value, "addresses", None)
            if parsed is None:
                raise TypeError("not an address header")
            found += [(clean(a.display_name), clean(a.addr_spec).lower()) for a in parsed if isinstance(a, Address)]
    except Exception:
        # The structured parser gave up: read the raw values the classic way.
        raw = [str(value) for key, value in message.raw_items() if key.lower() == name.lower()]
        found = [(clean(display), clean(address).lower()) for display, address in getaddresses(raw)]
    return [(collapse(display), address) for display, address in found if "@" in address]


def _ids(value: str) -> list[str]:
    found = _MESSAGE_ID.findall(value)
    if not found and value.strip():
        found = [token.strip("<>") for token in value.split()]
    return list(dict.fromkeys(found))


def _date(message: Message) -> datetime | None:
    value = header(message, "Date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read(raw: bytes, max_bytes: int) -> Message:
    if len(raw) > max_bytes:
        raise MailParseError(f"the message is {len(raw)} bytes, over the limit of {max_bytes} bytes")
    if not raw.strip():
        raise MailParseError("the message is empty")
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:
        raise MailParseError(f"the message cannot be parsed: {type(exc).__name__}: {exc}") from None
    if not any(key.lower() in _MESSAGE_HEADERS for key in message):
        raise MailParseError("not an e-mail message: none of From, To, Subject, Date, Message-ID is present")
    return message


def parse_mail(raw: bytes, *, max_bytes: int) -> ParsedMail:
    """Parse one raw message. Broken parts are read as far as they go (a missing boundary gives the body as text,
    an unknown charset decodes as UTF-8 with replacement); only an unreadable message raises MailParseError."""
    message = _read(raw, max_bytes)
    senders = _addresses(message, "From") or _addresses(message, "Sender")
    sender_name, sender = senders[0] if senders else ("", "")
    found = contents(message)
    html = "\n".join(found.html)
    plain = "\n\n".join(part for part in found.plain if part.strip())
    text = plain.replace("\r\n", "\n").strip("\n") if plain.strip() else html_to_text(html)
    attachments = [
        MailAttachment(filename=safe_filename(filename, index=index, content_type=kind), content_type=kind, data=data)
        for index, (filename, kind, data) in enumerate(found.files, start=1)
    ]
    return ParsedMail(
        message_id=(_ids(header(message, "Message-ID")) or [""])[0],
        in_reply_to=_ids(header(message, "In-Reply-To")),
        references=_ids(header(message, "References")),
        sender=sender,
        sender_name=sender_name,
        to=[address for _, address in _addresses(message, "To")],
        cc=[address for _, address in _addresses(message, "Cc")],
        subject=collapse(header(message, "Subject")),
        text=text,
        html=html,
        attachments=attachments,
        auto_generated=automatic_reason(message, sender=sender),
        bounce=find_bounce(message, sender=sender, text=text),
        date=_date(message),
        size=len(raw),
        reply_to=[address for _, address in _addresses(message, "Reply-To")],
    )
