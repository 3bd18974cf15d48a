"""Reading a parsed message's MIME tree: header values that never raise, text in any declared charset, the body
parts and the attachments. Everything here is forgiving: a broken part gives what can be read of it."""

from __future__ import annotations

import codecs
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message

# Parts that belong to a delivery report: read by itsm.mail.automatic, never offered as attachments.
REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status", "text/rfc822-headers"})
MAX_FILENAME = 150
# Characters no file system of a user should get in a name: path separators, Windows' reserved ones, controls.
_UNSAFE_IN_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def clean(value: str) -> str:
    """A string fit to store: raw 8-bit header bytes (kept by the parser as surrogates) read as UTF-8, and no NUL
    (PostgreSQL refuses it in text)."""
    if any("\udc80" <= char <= "\udcff" for char in value):
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value.replace("\x00", "")


def header(message: Message, name: str) -> str:
    """The decoded value of the first `name` header, "" when absent; a value the parser cannot handle is decoded
    as RFC 2047 by hand, or given as it stands."""
    try:
        value = message.get(name)
        return "" if value is None else clean(str(value))
    except Exception:  # the stdlib's header parser has raised IndexError, ValueError and others
        raw = next((value for key, value in message.raw_items() if key.lower() == name.lower()), "")
        return clean(_decode_words(str(raw)))


def _decode_words(raw: str) -> str:
    try:
        return str(make_header(decode_header(raw)))
    except Exception:  # an encoded word in an unknown charset or with broken base64
        return raw


def collapse(text: str) -> str:
    return " ".join(text.split())


def decode_text(data: bytes, charset: str | None) -> str:
    """`data` in its declared charset; an unknown or missing charset reads as UTF-8, and bytes that do not fit are
    replaced, never an exception."""
    name = (charset or "").strip().strip('"').lower()
    try:
        codec = codecs.lookup(name).name if name else "ascii"
    except LookupError:
        codec = "utf-8"
    if codec == "ascii":
        # Many clients declare us-ascii (or nothing) and send UTF-8 all the same.
        codec = "utf-8"
    try:
        return clean(data.decode(codec, errors="replace"))
    except Exception:  # a codec such as utf-7 can fail on a stray byte despite errors="replace"
        return clean(data.decode("utf-8", errors="replace"))


def payload_bytes(part: Message) -> bytes:
    """The decoded payload of a leaf part (base64 and quoted-printable undone as far as they go)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a payload the parser kept in an odd shape
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def part_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_text(payload_bytes(part), charset)


def content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"


def leaves(message: Message) -> Iterator[Message]:
    """Every part that is not a multipart container, in order; a message/* part (a forwarded mail, a report) is
    one leaf, its inside is not walked. A multipart whose boundary never appears is a leaf too."""
    payload = message.get_payload()
    if content_type(message).startswith("multipart/") and isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from leaves(sub)
        return
    yield message


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _raw_filename(part: Message) -> str:
    try:
        name = part.get_filename() or part.get_param("name", header="content-type") or ""
    except Exception:
        return ""
    if isinstance(name, tuple):  # an RFC 2231 value the stdlib left undecoded
        name = decode_text((name[2] or "").encode("latin-1", "replace"), name[0])
    name = str(name)
    # Outlook and others put RFC 2047 encoded words inside the parameter, which RFC 2231 does not allow.
    if "=?" in name:
        name = _decode_words(name)
    return clean(name)


def safe_filename(raw: str, *, index: int, content_type: str) -> str:
    """A plain file name: no directories, no control or reserved characters, at most MAX_FILENAME characters
    (keeping the extension); "attachment-<index><extension>" when nothing usable is left."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = collapse(_UNSAFE_IN_FILENAME.sub("_", name)).strip(" .")
    if name.strip("_") == "":
        extension = mimetypes.guess_extension(content_type, strict=False) or ""
        return f"attachment-{index}{extension}"
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = f"{stem[: MAX_FILENAME - len(extension) - 1]}.{extension}"
        else:
            name = name[:MAX_FILENAME]
    return name


@dataclass
class Contents:
    """What the leaves of a message hold: the inline text and HTML bodies, and the other parts."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    # (file name as sent, content type, data)
    files: list[tuple[str, str, bytes]] = field(default_factory=list)


def _message_bytes(part: Message) -> bytes:
    """A message/rfc822 part as bytes: the attached message re-serialized."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        try:
            return inner.as_bytes()
        except Exception:  # a header the generator cannot fold; the string form still reads
            return inner.as_string().encode("utf-8", "surrogateescape")
    return payload_bytes(part)


def contents(message: Message) -> Contents:
    """Sort the leaves: an inline text/plain or text/html without a file name is a body (all of them, in order: some
    clients split the text around an inline image), anything else but a report's own parts is an attachment."""
    found = Contents()
    for part in leaves(message):
        kind = content_type(part)
        filename = _raw_filename(part)
        attached = _disposition(part) == "attachment" or bool(filename)
        if kind in REPORT_TYPES:
            continue
        # A multipart whose boundary never appears is read as the text it is.
        body_kind = kind in ("text/plain", "text/html") or (part is message and kind.startswith("multipart/"))
        if body_kind and not attached:
            (found.html if kind == "text/html" else found.plain).append(part_text(part))
            continue
        data = _message_bytes(part) if kind.startswith("message/") else payload_bytes(part)
        found.files.append((filename, kind, data))
    return found
