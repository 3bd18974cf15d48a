"""parse_mail on the corpus in tests/mail/messages/ (each file modelled on what one kind of client or server sends)
and on messages built here for the single rules."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from itsm.mail.parse import MailParseError, ParsedMail, html_to_text, parse_mail

LIMIT = 10 * 1024 * 1024
Eml = Callable[[str], bytes]


def parse(raw: bytes) -> ParsedMail:
    return parse_mail(raw, max_bytes=LIMIT)


def simple(headers: str, body: str = "Hello\n") -> bytes:
    base = "From: Rita Requester <rita@example.org>\nTo: support@itsm.example.com\nSubject: Help\n"
    return (base + headers + "\n" + body).encode()


def test_a_thunderbird_reply_gives_its_thread_ids_addresses_and_text(eml: Eml) -> None:
    mail = parse(eml("thunderbird-reply"))

    assert mail.message_id == "3f1c2a9e-8d4b-4c1e-9a57-2b8e6f0d1c33@example.org"
    assert mail.in_reply_to == ["itsm.t1042.5b0e7c1f9a2d4e61@itsm.example.com"]
    assert mail.references == ["itsm.t1042@itsm.example.com", "itsm.t1042.5b0e7c1f9a2d4e61@itsm.example.com"]
    assert (mail.sender, mail.sender_name) == ("jane.doe@example.org", "Jane Doe")
    assert mail.to == ["support@itsm.example.com"]
    assert mail.subject == "Re: [#1042] VPN drops every few minutes"
    assert mail.text.startswith("Hi,\n\nrestarting the VPN client fixed it.")
    assert "> please quit the VPN client" in mail.text
    assert (mail.html, mail.attachments, mail.auto_generated, mail.bounce) == ("", [], "", None)
    assert mail.date == datetime(2025, 2, 3, 14, 2, 9, tzinfo=UTC)
    assert mail.size == len(eml("thunderbird-reply"))


def test_an_outlook_reply_takes_the_text_part_and_keeps_the_html_for_the_record(eml: Eml) -> None:
    mail = parse(eml("outlook-reply"))

    assert mail.text.startswith("Hi team,\n\nthe laptop still does not boot after holding the power button for 30 sec")
    assert "<p" not in mail.text
    assert "MsoNormal" not in mail.text
    assert mail.html.startswith("<html xmlns:v=")
    assert mail.cc == ["anna.schmidt@contoso.example"]
    assert mail.subject == "RE: [#1043] Laptop does not boot"
    assert mail.attachments == []


def test_a_gmail_reply_decodes_quoted_printable_utf8(eml: Eml) -> None:
    mail = parse(eml("gmail-reply"))

    assert "On Mon, Feb 3, 2025 at 2:12\u202fPM ITSM Service Desk" in mail.text
    assert mail.sender == "oscar.brown@gmail.com"
    assert mail.message_id == "CAF3kQ9uV+2pZ1Lr=8xY0bQh4nT7sWq1aJ5mXcR2dE6fG9hK0jQ@mail.gmail.com"


def test_a_german_reply_decodes_latin1_words_in_the_subject_the_name_and_the_body(eml: Eml) -> None:
    mail = parse(eml("german-reply"))

    assert mail.subject == "AW: [#1044] Drucker im 2. OG druckt nicht (Papierstau, Fächer leer)"
    assert mail.sender_name == "Jörg Müller"
    assert "obwohl beide Fächer leer sind. Ich habe das Gerät aus- und wieder eingeschaltet." in mail.text


def test_an_html_only_message_is_converted_to_clean_text(eml: Eml) -> None:
    mail = parse(eml("html-only"))

    assert mail.text == (
        "New request from the intranet\n\n"
        "Name        Lena Kraft\n"
        "Department  Controlling\n\n"
        "I need write access to \\\\fs01\\finance for the quarterly close – my manager approved it.\n\n"
        "  * Read: yes\n"
        "  * Write: yes\n\n"
        "Thanks & regards,\n"
        "Lena"
    )
    assert "tracking" not in mail.text
    assert "font-family" not in mail.text
    assert "<script>" in mail.html
    assert mail.reply_to == ["lena.kraft@example.org"]


def test_attachments_come_with_decoded_file_names_and_cc_addresses_are_lowercased(eml: Eml) -> None:
    mail = parse(eml("attachment-cc"))

    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("Rechnung März.pdf", "application/pdf"),
        ("Screenshot Übersicht – Fehler.png", "image/png"),
    ]
    pdf, png = mail.attachments
    assert pdf.data.startswith(b"%PDF-1.4")
    assert pdf.data.endswith(b"%%EOF\n")
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert mail.cc == ["max.mustermann@contoso.example", "zdenek.novak@contoso.example"]
    assert (mail.sender, mail.sender_name) == ("anna.schmidt@contoso.example", "Schmidt, Anna")
    assert mail.subject == "Rechnung März und Screenshot – Übersicht"
    assert mail.text.endswith("booking overview.\n\nAnna")


def test_an_out_of_office_reply_is_auto_generated(eml: Eml) -> None:
    mail = parse(eml("out-of-office"))

    assert mail.auto_generated == "Auto-Submitted: auto-replied"
    assert mail.bounce is None
    assert mail.in_reply_to == ["itsm.t1043.77aa0c2e3d4f5061@itsm.example.com"]


def test_a_newsletter_with_precedence_bulk_is_auto_generated(eml: Eml) -> None:
    assert parse(eml("newsletter")).auto_generated == "Precedence: bulk"


def test_a_dsn_names_the_failed_recipient_the_status_and_the_returned_message(eml: Eml) -> None:
    mail = parse(eml("dsn-bounce"))

    assert mail.auto_generated == "delivery status notification (multipart/report)"
    assert mail.bounce is not None
    assert mail.bounce.recipients == ["no.such.user@example.org"]
    assert (mail.bounce.status, mail.bounce.permanent) == ("5.1.1", True)
    assert mail.bounce.diagnostic == (
        "550 5.1.1 <no.such.user@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert mail.bounce.original_message_id == "itsm.t1046.0123456789abcdef@itsm.example.com"
    assert mail.attachments == []


def test_a_base64_encoded_global_dsn_is_read_too(eml: Eml) -> None:
    raw = eml("dsn-bounce")
    start = raw.index(b"Content-Type: message/delivery-status\n\n")
    end = raw.index(b"\n--4Q1p8W2kLgz9sRp", start)
    report = raw[start:end].split(b"\n\n", 1)[1]
    encoded = b"Content-Type: message/global-delivery-status\nContent-Transfer-Encoding: base64\n\n"
    raw = raw[:start] + encoded + base64.encodebytes(report) + raw[end:]

    bounce = parse(raw).bounce

    assert bounce is not None
    assert (bounce.recipients, bounce.status, bounce.permanent) == (["no.such.user@example.org"], "5.1.1", True)


def test_a_delayed_dsn_is_a_bounce_that_is_not_permanent(eml: Eml) -> None:
    raw = eml("dsn-bounce").replace(b"Action: failed", b"Action: delayed").replace(b"Status: 5.1.1", b"Status: 4.4.1")

    bounce = parse(raw).bounce

    assert bounce is not None
    assert (bounce.status, bounce.permanent) == ("4.4.1", False)


def test_a_dsn_of_a_successful_delivery_is_automatic_but_no_bounce(eml: Eml) -> None:
    raw = eml("dsn-bounce").replace(b"Action: failed", b"Action: delivered").replace(b"Status: 5.1.1", b"Status: 2.0.0")

    mail = parse(raw)

    assert mail.bounce is None
    assert mail.auto_generated


def test_a_classic_bounce_without_a_dsn_is_read_as_a_best_effort(eml: Eml) -> None:
    mail = parse(eml("classic-bounce"))

    assert mail.auto_generated == "sent by mailer-daemon@mail.example.net"
    assert mail.bounce is not None
    assert mail.bounce.recipients == ["gone.away@example.net"]
    assert (mail.bounce.status, mail.bounce.permanent) == ("5.1.1", True)
    assert mail.bounce.original_message_id == "itsm.t1048.fedcba9876543210@itsm.example.com"


def test_an_unknown_charset_is_decoded_as_utf8_with_replacement(eml: Eml) -> None:
    mail = parse(eml("unknown-charset"))

    assert mail.text == "The monitor on desk 12 flickers – café area, caf\ufffd menu \ufffd\ufffd.\nRoom 3·04."


def test_a_malformed_message_gives_what_can_be_read(eml: Eml) -> None:
    mail = parse(eml("malformed"))

    assert mail.sender == "broken@legacy.example"
    assert mail.subject == "printer queue stuck"
    assert (mail.message_id, mail.date) == ("", None)
    assert "The print queue on PRN-07 is stuck since this morning, 42 jobs waiting." in mail.text


def test_a_truncated_multipart_keeps_its_text_and_what_arrived_of_the_attachment(eml: Eml) -> None:
    mail = parse(eml("truncated-multipart"))

    assert mail.text == "Here is the export you asked for."
    (attachment,) = mail.attachments
    assert attachment.filename == "export.csv"
    assert attachment.data.startswith(b"id;name\n1;alpha\n")


def test_every_message_of_the_corpus_parses_with_crlf_line_ends_too(eml: Eml) -> None:
    for name in ("thunderbird-reply", "outlook-reply", "attachment-cc", "dsn-bounce", "malformed"):
        lf, crlf = parse(eml(name)), parse(eml(name).replace(b"\n", b"\r\n"))
        assert (crlf.subject, crlf.sender, crlf.text.replace("\r", "")) == (lf.subject, lf.sender, lf.text)
        assert [a.data for a in crlf.attachments] == [a.data for a in lf.attachments]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (b"just some words, no headers at all\n", "not an e-mail message"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not an e-mail message"),
        (b"From: a@example.org\n\n" + b"x" * 200, "over the limit of 100 bytes"),
    ],
)
def test_a_message_that_cannot_be_read_raises_saying_why(raw: bytes, reason: str) -> None:
    with pytest.raises(MailParseError, match=reason):
        parse_mail(raw, max_bytes=100)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-generated\n", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted: auto-notified; owner-email=x@example.org\n", "Auto-Submitted: auto-notified"),
        ("X-Autoreply: yes\n", "X-Autoreply header"),
        ("X-Autorespond: Vacation\n", "X-Autorespond header"),
        ("Precedence: junk\n", "Precedence: junk"),
        ("Precedence: list\n", "Precedence: list"),
        ("List-Id: IT announcements <it-announce.lists.example.org>\n", "mailing list (List-Id header)"),
        ("List-Unsubscribe: <mailto:leave@lists.example.org>\n", "mailing list (List-Unsubscribe header)"),
        ("Return-Path: <>\n", "empty Return-Path"),
    ],
)
def test_each_mark_of_automatic_mail_is_recognised(headers: str, reason: str) -> None:
    assert parse(simple(headers)).auto_generated.startswith(reason)


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.org", "postmaster@example.org"])
def test_mail_from_a_mailer_daemon_or_postmaster_is_auto_generated(sender: str) -> None:
    raw = f"From: {sender}\nTo: support@itsm.example.com\nSubject: Note\n\nSomething\n".encode()

    assert parse(raw).auto_generated == f"sent by {sender.lower()}"


@pytest.mark.parametrize("headers", ["", "Auto-Submitted: no\n", "Precedence: normal\n", "X-Priority: 1\n"])
def test_a_persons_mail_is_not_auto_generated(headers: str) -> None:
    assert parse(simple(headers)).auto_generated == ""


def test_a_file_name_is_a_plain_name_without_directories_or_control_characters() -> None:
    names = [
        'attachment; filename="../../etc/passwd"',
        'attachment; filename="C:\\\\Users\\\\rita\\\\report.xlsx"',
        'attachment; filename="  .hidden\\x01\\x7fname?.txt "',
        "attachment",
        'inline; filename=""',
    ]
    parts = "".join(
        f"--b\nContent-Type: application/octet-stream\nContent-Disposition: {name}\n\ndata{n}\n"
        for n, name in enumerate(names)
    )
    raw = simple('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n', f"{parts}--b--\n")

    mail = parse(raw.replace(b"\\x01", b"\x01").replace(b"\\x7f", b"\x7f"))

    assert [a.filename for a in mail.attachments] == [
        "passwd",
        "report.xlsx",
        "hidden_name_.txt",
        "attachment-4.bin",
        "attachment-5.bin",
    ]
    assert [a.data for a in mail.attachments] == [f"data{n}".encode() for n in range(5)]


def test_a_long_file_name_is_shortened_keeping_its_extension() -> None:
    raw = simple(
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
        "--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: application/pdf\n"
        f'Content-Disposition: attachment; filename="{"x" * 300}.pdf"\n\n%PDF\n--b--\n',
    )

    (attachment,) = parse(raw).attachments

    assert len(attachment.filename) == 150
    assert attachment.filename.endswith("x.pdf")


def test_an_inline_image_with_a_name_is_an_attachment_and_the_html_alternative_is_not() -> None:
    body = (
        "--alt\nContent-Type: text/plain; charset=utf-8\n\nSee the picture.\n"
        '--alt\nContent-Type: multipart/related; boundary="rel"\n\n'
        '--rel\nContent-Type: text/html; charset=utf-8\n\n<p>See the picture.</p><img src="cid:image001">\n'
        '--rel\nContent-Type: image/png; name="image001.png"\nContent-ID: <image001>\n'
        "Content-Disposition: inline; filename=image001.png\nContent-Transfer-Encoding: base64\n\n"
        "iVBORw0KGgo=\n--rel--\n--alt--\n"
    )
    raw = simple('MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="alt"\n', body)

    mail = parse(raw)

    assert mail.text == "See the picture."
    assert mail.html.startswith("<p>See the picture.</p>")
    assert [(a.filename, a.content_type, a.data) for a in mail.attachments] == [
        ("image001.png", "image/png", b"\x89PNG\r\n\x1a\n")
    ]


def test_a_forwarded_message_is_one_attachment_and_its_text_is_not_the_body() -> None:
    inner = "From: x@example.org\nSubject: Original\n\nThe forwarded text.\n"
    body = (
        "--b\nContent-Type: text/plain\n\nPlease see below.\n"
        f"--b\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n{inner}--b--\n"
    )
    mail = parse(simple('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n', body))

    assert mail.text == "Please see below."
    (forwarded,) = mail.attachments
    assert (forwarded.filename, forwarded.content_type) == ("attachment-1.eml", "message/rfc822")
    assert b"The forwarded text." in forwarded.data


def test_text_split_around_an_inline_image_is_kept_whole() -> None:
    body = (
        "--b\nContent-Type: text/plain\n\nBefore the picture.\n"
        "--b\nContent-Type: image/png\nContent-Disposition: inline; filename=a.png\n\nPNG\n"
        "--b\nContent-Type: text/plain\n\nAfter the picture.\n--b--\n"
    )
    mail = parse(simple('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n', body))

    assert mail.text == "Before the picture.\n\nAfter the picture."
    assert [a.filename for a in mail.attachments] == ["a.png"]


def test_nul_characters_and_raw_utf8_headers_are_made_storable() -> None:
    raw = "From: Zoë <zoe@example.org>\nTo: support@itsm.example.com\nSubject: Café\n\nNUL:\x00 here\n".encode()

    mail = parse(raw)

    assert (mail.subject, mail.sender_name, mail.text) == ("Café", "Zoë", "NUL: here")


def test_subject_whitespace_is_collapsed_and_missing_parts_are_empty() -> None:
    raw = b"From: rita@example.org\nSubject:   two\n\tlines   here \n\nbody\n"

    mail = parse(raw)

    assert mail.subject == "two lines here"
    assert (mail.to, mail.cc, mail.message_id, mail.in_reply_to, mail.references) == ([], [], "", [], [])
    assert (mail.sender, mail.sender_name) == ("rita@example.org", "")


def test_dates_without_a_zone_are_utc_and_unreadable_dates_are_none() -> None:
    assert parse(simple("Date: Mon, 3 Feb 2025 14:00:00 -0000\n")).date == datetime(2025, 2, 3, 14, 0, tzinfo=UTC)
    assert parse(simple("Date: Mon, 3 Feb 2025 14:00:00 +0530\n")).date == datetime(
        2025, 2, 3, 14, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )
    assert parse(simple("Date: the day after tomorrow\n")).date is None


def test_html_to_text_never_returns_markup() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<?xml version='1.0'?>") == ""
    assert html_to_text("<p>a<br>b</p><p>c</p>") == "a\nb\n\nc"
