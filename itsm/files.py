"""What an uploaded file is, from its first bytes and its name, and the name it is shown under: pure functions.

A client's Content-Type is whatever it says (a browser sends what the operating system guesses from the name, a
mail client may send application/octet-stream for everything), so the attachment service believes the content
first: the signatures below cover the executables that must be refused, the markup a browser would run (the
WHATWG MIME sniffing rules for HTML, plus SVG and XML), and the common document and image formats, whose claim
can then be checked. Nothing here reads settings or touches storage.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

# How much of the start of a file sniff_type needs.
SNIFF_BYTES = 4096
OCTET_STREAM = "application/octet-stream"

# (prefix, type), checked in order; the first match wins.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "application/x-msdownload"),  # Windows PE: .exe, .dll, .scr, .sys
    (b"\x7fELF", "application/x-executable"),
    (b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary"),  # a universal binary (or a Java class: as dangerous)
    (b"#!", "application/x-sh"),  # a script with an interpreter line
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),  # an empty zip
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # .doc, .xls, .msg, .msi
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"{\\rtf", "application/rtf"),
)
# Formats that are a zip or an OLE compound file inside: a claim of one of them is believed when the content is that
# container (a .docx is a zip; telling it from a plain zip would mean unpacking it).
_CONTAINED = {
    "application/zip": frozenset(
        {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.oasis.opendocument.text",
            "application/vnd.oasis.opendocument.spreadsheet",
            "application/vnd.oasis.opendocument.presentation",
            "application/epub+zip",
            "application/java-archive",
            "application/x-zip-compressed",
        }
    ),
    "application/x-ole-storage": frozenset(
        {
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.ms-outlook",
            "application/x-msi",
        }
    ),
}
# What every type sniff_type can name looks like, so a claim of one of them that the content contradicts (a
# "image/png" that is no PNG) is not believed.
SNIFFABLE = frozenset(kind for _, kind in _SIGNATURES) | {"text/html", "image/svg+xml", "text/xml", "image/webp"}

# The WHATWG MIME sniffing standard's HTML openings ("identifying a resource with an unknown MIME type"), each
# followed by a space or ">" (or "!" for the comment), after leading white space.
_HTML_OPENINGS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
)
_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")

# Names whose type mimetypes does not know (or knows only on some systems) but which a desktop runs when opened.
_RUNNABLE_EXTENSIONS = {
    ".exe": "application/x-msdownload",
    ".dll": "application/x-msdownload",
    ".scr": "application/x-msdownload",
    ".com": "application/x-msdownload",
    ".cpl": "application/x-msdownload",
    ".msi": "application/x-msi",
    ".bat": "application/x-bat",
    ".cmd": "application/x-bat",
    ".ps1": "application/x-powershell",
    ".psm1": "application/x-powershell",
    ".vbs": "application/x-vbscript",
    ".vbe": "application/x-vbscript",
    ".wsf": "application/x-vbscript",
    ".hta": "application/hta",
    ".lnk": "application/x-ms-shortcut",
    ".jar": "application/java-archive",
    ".sh": "application/x-sh",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".jse": "text/javascript",
    ".svg": "image/svg+xml",
    ".svgz": "image/svg+xml",
    ".htm": "text/html",
    ".html": "text/html",
    ".shtml": "text/html",
    ".xhtml": "application/xhtml+xml",
    ".mht": "application/x-mimearchive",  # a web page archive, which browsers open as HTML
    ".mhtml": "application/x-mimearchive",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EXTENSION = re.compile(r"\.[a-z0-9]{1,10}$")
MAX_FILENAME = 255


def sniff_type(head: bytes) -> str | None:
    """The type the first bytes of a file show (at most SNIFF_BYTES are looked at), or None when they show none."""
    head = head[:SNIFF_BYTES]
    for prefix, kind in _SIGNATURES:
        if head.startswith(prefix):
            return kind
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return _markup_type(head)


def _markup_type(head: bytes) -> str | None:
    # UTF-16 text is looked at as ASCII: an "<html" in UTF-16 is still HTML to a browser.
    utf16 = head.startswith(_BOMS[1:]) or b"\x00" in head[:2]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    if utf16:
        head = head.replace(b"\x00", b"")
    text = head.lstrip(b" \t\n\r\x0c").lower()
    for opening in _HTML_OPENINGS:
        if text.startswith(opening):
            after = text[len(opening) : len(opening) + 1]
            if after in (b" ", b">", b"\t", b"\n", b"\r", b"\x0c", b"/") or (opening == b"<!--" and after):
                return "text/html"
    if text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!doctype svg")) and b"<svg" in text):
        return "image/svg+xml"
    if text.startswith(b"<?xml"):
        # XML can carry XHTML and scripts (and an XSLT that writes them).
        return "text/xml"
    return None


def type_from_name(filename: str) -> str | None:
    """The type a desktop would open a file of this name as, or None when the name says nothing."""
    extension = _extension(filename)
    if extension in _RUNNABLE_EXTENSIONS:
        return _RUNNABLE_EXTENSIONS[extension]
    guessed, _ = mimetypes.guess_type(f"file{extension}", strict=False)
    return guessed


def normalize_type(content_type: str) -> str:
    """`Text/Plain; charset=utf-8` → `text/plain`; anything that is not type/subtype → ''."""
    value = content_type.split(";", 1)[0].strip().lower()
    return value if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", value) else ""


def effective_type(*, claimed: str, sniffed: str | None, named: str | None) -> str:
    """The type the attachment is stored and served as: what the content shows; a claim (or else the name) the
    content cannot contradict; application/octet-stream when the content contradicts the claim."""
    for hint in (claimed, named or ""):
        if sniffed is not None and hint in _CONTAINED.get(sniffed, ()):
            return hint
    if sniffed is not None:
        return sniffed
    for hint in (claimed, named or ""):
        if hint and hint != OCTET_STREAM:
            return OCTET_STREAM if hint in SNIFFABLE else hint
    return OCTET_STREAM


def type_matches(content_type: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether `content_type` is one of `patterns` (`image/png`, or `image/*` for a whole family)."""
    family = content_type.split("/", 1)[0]
    return any(
        pattern.strip().lower() in (content_type, f"{family}/*", "*/*") for pattern in patterns if pattern.strip()
    )


def clean_filename(filename: str) -> str:
    """The uploaded name fit for display and for Content-Disposition: its last path component, NFC, without
    control characters or leading dots, at most 255 characters (keeping the extension); "attachment" if nothing
    is left."""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().lstrip(".").strip()
    if len(name) > MAX_FILENAME:
        extension = _extension(name)
        name = name[: MAX_FILENAME - len(extension)] + extension
    return name or "attachment"


def storage_extension(filename: str) -> str:
    """A safe extension for the stored name (lowercase letters and digits), or ''."""
    return _extension(filename)


def _extension(filename: str) -> str:
    match = _EXTENSION.search(filename.strip().lower())
    return match.group(0) if match else ""
