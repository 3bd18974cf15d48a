"""strip_quoted: the new part of the replies in the corpus and of the quote styles clients write."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from itsm.mail.parse import html_to_text, parse_mail
from itsm.mail.reply import strip_quoted

Eml = Callable[[str], bytes]


def text_of(raw: bytes) -> str:
    return parse_mail(raw, max_bytes=10 * 1024 * 1024).text


def test_a_thunderbird_reply_loses_the_quote_and_the_signature_but_keeps_the_log_indentation(eml: Eml) -> None:
    assert strip_quoted(text_of(eml("thunderbird-reply"))) == (
        "Hi,\n\n"
        "restarting the VPN client fixed it. The log now shows:\n\n"
        "     2025-02-03 14:58:01 tunnel up (wg0)\n"
        "     2025-02-03 15:01:44 keepalive ok\n\n"
        "I will close the ticket tomorrow if it stays up."
    )


OUTLOOK_NEW_PART = (
    "Hi team,\n\n"
    "the laptop still does not boot after holding the power button for 30 seconds. The screen stays black and the"
    " caps lock light blinks three times.\n\n"
    "Best regards\n"
    "Max"
)


def test_an_outlook_reply_loses_the_from_sent_block(eml: Eml) -> None:
    assert strip_quoted(text_of(eml("outlook-reply"))) == OUTLOOK_NEW_PART


def test_an_outlook_reply_read_from_its_html_part_loses_the_from_sent_block_too(eml: Eml) -> None:
    html = parse_mail(eml("outlook-reply"), max_bytes=10**6).html

    assert strip_quoted(html_to_text(html)) == OUTLOOK_NEW_PART.replace("Best regards\n", "Best regards\n\n")


def test_a_gmail_reply_loses_the_wrapped_on_wrote_line_and_the_quote(eml: Eml) -> None:
    assert strip_quoted(text_of(eml("gmail-reply"))) == (
        "The new toner did not help, the printer on floor 3 still jams after about\nten pages. It shows error E-204."
    )


def test_a_german_reply_loses_the_am_schrieb_quote_and_keeps_the_greeting(eml: Eml) -> None:
    assert strip_quoted(text_of(eml("german-reply"))) == (
        "Hallo zusammen,\n\n"
        "der Drucker im 2. OG meldet weiterhin einen Papierstau, obwohl beide Fächer leer sind. Ich habe das Gerät"
        " aus- und wieder eingeschaltet.\n\n"
        "Viele Grüße\n"
        "Jörg Müller"
    )


@pytest.mark.parametrize("name", ["html-only", "attachment-cc", "out-of-office", "newsletter", "unknown-charset"])
def test_a_message_that_quotes_nothing_is_returned_whole(eml: Eml, name: str) -> None:
    text = text_of(eml(name))

    assert strip_quoted(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "new"),
    [
        (
            "Done, thank you.\n\n-----Original Message-----\nFrom: ITSM Service Desk [mailto:support@itsm.example.com]"
            "\nSent: Monday, February 3, 2025 2:12 PM\nTo: Max\nSubject: RE: [#1043] x\n\nold text\n",
            "Done, thank you.",
        ),
        (
            "Done.\n\n________________________________\nFrom: ITSM Service Desk <support@itsm.example.com>\n"
            "Sent: Monday, February 3, 2025 2:12 PM\nTo: Max\nSubject: x\n\nold\n",
            "Done.",
        ),
        (
            "Erledigt.\n\nVon: ITSM Service Desk <support@itsm.example.com>\nGesendet: Montag, 3. Februar 2025 14:12\n"
            "An: Max\nBetreff: x\n\nalt\n",
            "Erledigt.",
        ),
        (
            "C'est réparé, merci.\n\nLe lun. 3 févr. 2025 à 14:12, ITSM Service Desk <support@itsm.example.com> a écrit"
            " :\n> Bonjour,\n> pouvez-vous redémarrer ?\n",
            "C'est réparé, merci.",
        ),
        ("I tried that.\n\n> did you restart?\n> and the cable?\n", "I tried that."),
        (
            "On Mon, Feb 3, 2025 at 2:12 PM Desk <d@example.com> wrote:\n> Did it work?\n\nYes, it works now.\n",
            "Yes, it works now.",
        ),
        ("> Did you restart?\nYes, twice.\n> And the cable?\nAlso checked.\n", "Yes, twice.\nAlso checked."),
        ("Fixed.\r\n\r\nOn Mon, Feb 3, 2025 at 2:12 PM Desk <d@example.com> wrote:\r\n> old\r\n", "Fixed."),
    ],
)
def test_each_quote_style_is_removed(text: str, new: str) -> None:
    assert strip_quoted(text) == new


def test_a_paragraph_that_starts_with_thanks_is_not_taken_for_a_signature() -> None:
    text = (
        "Hi,\nThanks, that fixed the mail problem. But now the calendar does not sync:\n"
        "- meeting A is missing\n- meeting B shows twice\nPlease look."
    )

    assert strip_quoted(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "> only\n> quoted\n",
        "On Mon, Feb 3, 2025 at 2:12 PM Desk <d@example.com> wrote:\n> old\n",
        "Von: ITSM Service Desk <support@itsm.example.com>\nGesendet: Montag, 3. Februar 2025\nAn: Max\n\nalt\n",
        "-- \nJane Doe\n",
    ],
)
def test_a_message_with_nothing_new_is_returned_whole_never_empty(text: str) -> None:
    assert strip_quoted(text) == text.strip()


def test_an_empty_text_stays_empty() -> None:
    assert strip_quoted("") == ""
    assert strip_quoted(" \n\n ") == ""


def test_a_very_long_line_is_searched_quickly_and_returned_unchanged() -> None:
    # Unbounded, the library's "On … wrote:" pattern takes about two minutes on a 100,000-character line.
    text = "On " + "x " * 150_000 + "\nand a second line"
    started = time.monotonic()

    result = strip_quoted(text)

    assert time.monotonic() - started < 10
    assert result == text.strip()


def test_a_quote_in_a_long_reply_is_still_found_after_a_long_line() -> None:
    long_line = "word " * 1000
    text = f"{long_line}\n\nOn Mon, Feb 3, 2025 at 2:12 PM Desk <d@example.com> wrote:\n> old\n"

    assert strip_quoted(text) == long_line.strip()
