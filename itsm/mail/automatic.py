"""Mail that no person wrote: auto-replies, lists and bulk mail, and delivery reports. `automatic_reason` says why a
message is automatic; `find_bounce` reads which recipients failed, from a DSN (RFC 3464) or, failing that, from
the text of a classic bounce."""

from __future__ import annotations

import base64
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from itsm.mail.parts import collapse, content_type, decode_text, header, leaves, payload_bytes

DAEMON_SENDERS = frozenset({"mailer-daemon", "postmaster"})
BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b([45])\d\d\b")
# The lookbehind starts a match only where a run of address characters starts, which keeps the search linear.
_ADDRESS = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]++@[\w-]+(?:\.[\w-]+)+")
_MESSAGE_ID = re.compile(r"^[ \t]*Message-ID:[ \t]*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
# Lines where a classic bounce starts quoting the returned message: the addresses after them are not the failed
# ones.
_RETURNED_COPY = (
    "original message",
    "copy of the message",
    "copy of your message",
    "returned message",
    "message headers follow",
    "undelivered message",
)
# A classic bounce says what failed in its first lines; only these are searched.
CLASSIC_NOTICE_CHARS = 20_000
_CLASSIC_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|has failed|notification)|failure notice|returned mail|"
    r"mail delivery failed|could not be delivered|unzustellbar|non remis|no se puede entregar",
    re.IGNORECASE,
)
_DELAY = re.compile(r"delay|still being retried|will (?:continue to )?(?:re)?try|not yet been delivered", re.I)


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report about a message sent earlier."""

    recipients: list[str]
    status: str
    permanent: bool
    diagnostic: str
    # The Message-ID (without <>) of the message that failed, when the report returns its headers; "" otherwise.
    original_message_id: str = ""


def address_local_part(address: str) -> str:
    return address.rpartition("@")[0] if "@" in address else address


def automatic_reason(message: Message, *, sender: str) -> str:
    """Why `message` is automatic ("" for a person's mail): the first of a report (RFC 3464 DSN, RFC 8098 read
    receipt), RFC 3834 Auto-Submitted, X-Autoreply / X-Autorespond, Precedence bulk/junk/list, a mailing list
    (List-Id, List-Unsubscribe), a mailer-daemon or postmaster sender, an empty Return-Path."""
    if content_type(message) == "multipart/report":
        report_type = str(message.get_param("report-type") or "").lower()
        if report_type == "delivery-status":
            return "delivery status notification (multipart/report)"
        return f"report (multipart/report; report-type={report_type or 'unknown'})"
    auto_submitted = collapse(header(message, "Auto-Submitted")).lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if message.get(name) is not None:
            return f"{name} header"
    precedence = collapse(header(message, "Precedence")).lower()
    if precedence in BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe"):
        if message.get(name) is not None:
            return f"mailing list ({name} header)"
    if address_local_part(sender) in DAEMON_SENDERS:
        return f"sent by {sender}"
    if "<>" in header(message, "Return-Path").replace(" ", ""):
        return "empty Return-Path (a delivery notice)"
    return ""


def _report_part(message: Message) -> Message | None:
    for part in leaves(message):
        if content_type(part) in ("message/delivery-status", "message/global-delivery-status"):
            return part
    return None


def _status_groups(part: Message) -> list[Message]:
    """The field groups of a delivery-status part: per message first, then one per recipient. The parser splits
    the groups itself unless the part is encoded (base64 is allowed for message/global-delivery-status, RFC 6533):
    then the decoded text is split here."""
    payload = part.get_payload()
    groups = [group for group in payload if isinstance(group, Message)] if isinstance(payload, list) else []
    if any(group.get("Action") is not None for group in groups):
        return groups
    encoded = "".join(group.as_string() for group in groups) if groups else str(payload)
    encoding = header(part, "Content-Transfer-Encoding").strip().lower()
    try:
        if encoding == "base64":
            data = base64.b64decode(re.sub(r"[^A-Za-z0-9+/=]", "", encoded) + "==")
        elif encoding == "quoted-printable":
            data = quopri.decodestring(encoded.encode("utf-8", "surrogateescape"))
        else:
            data = encoded.encode("utf-8", "surrogateescape")
    except ValueError:
        return groups
    text = decode_text(data, "utf-8").replace("\r\n", "\n")
    return [HeaderParser().parsestr(block) for block in re.split(r"\n[ \t\r]*\n", text) if block.strip()]


def _address_field(value: str) -> str:
    """`rfc822; User@Example.org` → `user@example.org`."""
    return value.partition(";")[2].strip().strip("<>").lower() if ";" in value else value.strip().strip("<>").lower()


def _original_message_id(message: Message) -> str:
    for part in leaves(message):
        kind = content_type(part)
        if kind in ("message/rfc822", "message/global", "message/rfc822-headers"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return header(inner[0], "Message-ID").strip().strip("<>")
        if kind in ("text/rfc822-headers", "message/rfc822-headers", "message/rfc822"):
            found = _MESSAGE_ID.search(payload_bytes(part).decode("utf-8", "replace"))
            if found:
                return found.group(1)
    return ""


def _dsn_bounce(message: Message, report: Message) -> Bounce | None:
    failed: list[tuple[str, str, str]] = []
    delayed: list[tuple[str, str, str]] = []
    for group in _status_groups(report)[1:]:
        recipient = _address_field(header(group, "Final-Recipient") or header(group, "Original-Recipient"))
        action = header(group, "Action").strip().lower()
        diagnostic = collapse(header(group, "Diagnostic-Code"))
        status_match = _STATUS.search(header(group, "Status")) or _STATUS.search(diagnostic)
        status = ".".join(status_match.groups()) if status_match else ""
        if action == "failed":
            failed.append((recipient, status or "5.0.0", diagnostic))
        elif action == "delayed":
            delayed.append((recipient, status or "4.0.0", diagnostic))
    chosen = failed or delayed
    if not chosen:
        return None
    _, status, diagnostic = chosen[0]
    return Bounce(
        recipients=list(dict.fromkeys(recipient for recipient, _, _ in chosen if recipient)),
        status=status,
        permanent=status.startswith("5"),
        diagnostic=diagnostic.partition(";")[2].strip() if ";" in diagnostic[:12] else diagnostic,
        original_message_id=_original_message_id(message),
    )


def _returned_copy_start(text: str) -> int:
    position = 0
    for line in text.splitlines(keepends=True):
        lowered = line.lower()
        if lowered.startswith("received:") or any(marker in lowered for marker in _RETURNED_COPY):
            return position
        position += len(line)
    return len(text)


def _classic_bounce(message: Message, *, sender: str, text: str) -> Bounce | None:
    """A best effort on a bounce without a DSN (qmail, old Exim, Exchange's text): the status and the addresses
    before the returned copy of the message."""
    subject = header(message, "Subject")
    if address_local_part(sender) not in DAEMON_SENDERS and not (
        "<>" in header(message, "Return-Path").replace(" ", "") and _CLASSIC_SUBJECT.search(subject)
    ):
        return None
    text = text[:CLASSIC_NOTICE_CHARS]
    cut = _returned_copy_start(text)
    notice = text[:cut]
    ours = {sender, *(address.lower() for address in _ADDRESS.findall(header(message, "To")))}
    recipients = [
        address for address in dict.fromkeys(a.lower() for a in _ADDRESS.findall(notice)) if address not in ours
    ]
    status_match = _STATUS.search(notice)
    if status_match:
        status = ".".join(status_match.groups())
    elif reply := _SMTP_REPLY.search(notice):
        status = f"{reply.group(1)}.0.0"
    else:
        status = "4.0.0" if _DELAY.search(subject) or _DELAY.search(notice) else "5.0.0"
    if not recipients and not status_match:
        return None
    diagnostic_line = next(
        (line for line in notice.splitlines() if _STATUS.search(line) or _SMTP_REPLY.search(line)), ""
    )
    message_id = _MESSAGE_ID.search(text[cut:])
    return Bounce(
        recipients=recipients,
        status=status,
        permanent=status.startswith("5"),
        diagnostic=collapse(diagnostic_line),
        original_message_id=message_id.group(1) if message_id else _original_message_id(message),
    )


def find_bounce(message: Message, *, sender: str, text: str) -> Bounce | None:
    """The failure `message` reports, if it is a bounce: a DSN's failed (else delayed) recipients, else a best effort
    on a classic bounce from a mailer daemon. `text` is the message's readable text."""
    report = _report_part(message)
    if report is not None:
        return _dsn_bounce(message, report)
    return _classic_bounce(message, sender=sender, text=text)
