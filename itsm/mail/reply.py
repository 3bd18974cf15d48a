"""The new part of a reply, found by mail-parser-reply: it splits a body at the quote headers mail clients write
("On … wrote:", "Am … schrieb …:", "Le … a écrit :", Outlook's "From: … Sent: …" block, "-----Original
Message-----") in the languages it knows, and finds the signature. Around it:

- its signature detection is used only for a signature under the "-- " delimiter: it also takes a line starting
  with "Thanks," or "Best," for the start of a signature, and would cut the paragraph that follows;
- it strips every line, so each line it keeps is taken back from the original text (pasted logs keep their
  indentation);
- "> " lines it left (a quote without a header, answers written between quoted lines) are dropped;
- its patterns take time quadratic in the length of a line, so it searches at most MAX_SEARCHED characters, in
  lines of at most MAX_LINE."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailparser_reply import EmailMessage

# The languages whose quote headers are recognised (mail-parser-reply knows these and more; each one adds patterns
# that run on every line).
DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs")
# Only this much of a message is searched for the quote header; the new part of a reply comes first.
MAX_SEARCHED = 100_000
# RFC 5322 lines are at most 998 characters; longer ones are wrapped for the search and joined again afterwards.
MAX_LINE = 998
_WRAPPED_AT_SPACE = "\ue000"
_WRAPPED = "\ue001"
_BLANK_RUNS = re.compile(r"\n{3,}")


def _wrap_long_lines(text: str) -> str:
    """Break lines over MAX_LINE characters (at a space where there is one), marking each break with a private-use
    character so that `_unwrap` restores the original exactly."""
    lines = []
    for line in text.split("\n"):
        while len(line) > MAX_LINE:
            cut = line.rfind(" ", MAX_LINE // 2, MAX_LINE)
            if cut > 0:
                lines.append(line[:cut] + _WRAPPED_AT_SPACE)
                line = line[cut + 1 :]
            else:
                lines.append(line[:MAX_LINE] + _WRAPPED)
                line = line[MAX_LINE:]
        lines.append(line)
    return "\n".join(lines)


def _unwrap(text: str) -> str:
    return text.replace(_WRAPPED_AT_SPACE + "\n", " ").replace(_WRAPPED + "\n", "")


def _with_original_lines(original: str, found: str) -> str:
    """`found` (whose lines the library stripped) with each line as it stands in `original`, so that the
    indentation of pasted logs and code survives; `found` itself when its lines cannot all be matched in order."""
    lines = original.split("\n")
    kept = []
    position = 0
    for line in found.split("\n"):
        wanted = line.strip()
        while position < len(lines) and lines[position].strip() != wanted:
            position += 1
        if position == len(lines):
            return found
        kept.append(lines[position].rstrip())
        position += 1
    return "\n".join(kept)


def _without_quoted_lines(text: str) -> str:
    """Drop "> " lines: a quote without a header above it, or answers written between quoted lines."""
    kept = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip()


def strip_quoted(text: str, *, languages: Sequence[str] = DEFAULT_LANGUAGES) -> str:
    """The new part of a reply: the quoted history, "> " lines and a "-- " signature removed. Never "" for a text
    that has non-blank content: when nothing new is left, the whole text (stripped) is returned."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    whole = text.strip()
    if not whole:
        return whole
    searched = _wrap_long_lines(text[:MAX_SEARCHED].replace(_WRAPPED_AT_SPACE, "").replace(_WRAPPED, ""))
    message = EmailMessage(text=searched, languages=list(languages), keep_hyphen_lists=True).read()
    if not message.replies:
        return whole
    first = message.replies[0]
    found_header = len(message.replies) > 1 or bool(first.headers)
    if not found_header and len(text) > MAX_SEARCHED:
        # No quote header in the searched part: the rest is not known to be history, so nothing is cut.
        new = _without_quoted_lines(text)
        return new or whole
    signature = first.signatures.lstrip()
    new = first.body if signature.startswith(("--\n", "__\n")) or signature in ("--", "__") else first.full_body
    new = _with_original_lines(text, _unwrap(new))
    if first.headers and not any(line.lstrip().startswith(">") for line in new.split("\n")):
        # The text starts with a quote header and nothing under it is quoted: an Outlook-style quote (or a forward)
        # with nothing written above it, not an answer written below "> " lines.
        return whole
    return _without_quoted_lines(new) or whole
