"""What may be published: the rules shared by an incident's and a maintenance window's public title and an
incident's public status updates, which anyone can read on the status page."""

from __future__ import annotations

import re

from itsm.exceptions import InvalidInput

# Anything shaped like an e-mail address: a public text is read by anyone, and people's addresses stay private.
# The lookbehind starts a match only where a run of address characters starts: without it, 20,000 letters and no
# "@" took 3 s (each position rescanned the rest), found by schemathesis' response-time check.
EMAIL_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(\.[\w-]+)+")


def public_text_errors(text: str) -> list[str]:
    """Why `text` may not be published (empty when it may)."""
    if EMAIL_ADDRESS.search(text):
        return ["Public text is shown to anyone: remove the e-mail address."]
    return []


def publication_checked(*, public: bool, public_title: str, noun: str) -> str:
    """The public title as stored (trimmed), or InvalidInput: a public record needs a public title of its own (the
    internal one is never shown), and no e-mail address in it."""
    title = public_title.strip()
    errors = public_text_errors(title)
    if public and not title:
        errors.append(f"A public {noun} needs a public title: its internal title is never shown.")
    if errors:
        raise InvalidInput({"public_title": errors})
    return title
