"""Message-IDs, thread roots and subject tags of ticket mail."""

from __future__ import annotations

import re

import pytest

from itsm.mail.threading import (
    make_message_id,
    subject_tag,
    tagged_subject,
    ticket_id_from_message_id,
    ticket_id_from_subject,
    ticket_thread_root,
)


def test_a_message_id_names_the_ticket_and_is_new_each_time() -> None:
    ids = {make_message_id(ticket_id=123, domain="ITSM.Example.com") for _ in range(100)}

    assert len(ids) == 100
    assert all(re.fullmatch(r"itsm\.t123\.[0-9a-f]{16}@itsm\.example\.com", found) for found in ids)


def test_the_thread_root_is_the_same_for_every_message_of_a_ticket() -> None:
    assert ticket_thread_root(ticket_id=123, domain="itsm.example.com") == "itsm.t123@itsm.example.com"
    assert ticket_thread_root(ticket_id=123, domain="itsm.example.com") != ticket_thread_root(
        ticket_id=124, domain="itsm.example.com"
    )


def test_our_message_ids_lead_back_to_their_ticket() -> None:
    message_id = make_message_id(ticket_id=77, domain="itsm.example.com")

    assert ticket_id_from_message_id(message_id, domain="itsm.example.com") == 77
    assert ticket_id_from_message_id(f"<{message_id}>", domain="ITSM.example.com") == 77
    assert ticket_id_from_message_id("itsm.t77@itsm.example.com", domain="itsm.example.com") == 77


@pytest.mark.parametrize(
    "message_id",
    [
        "itsm.t77.abc@elsewhere.example",
        "CAF3kQ9u@mail.gmail.com",
        "itsm.t0@itsm.example.com",
        "itsm.tx@itsm.example.com",
        "",
    ],
)
def test_other_message_ids_name_no_ticket(message_id: str) -> None:
    assert ticket_id_from_message_id(message_id, domain="itsm.example.com") is None


@pytest.mark.parametrize("domain", ["", "itsm example.com", "<x>", "a@b.example", "-bad.example"])
def test_a_bad_domain_is_refused(domain: str) -> None:
    with pytest.raises(ValueError, match="not a domain name"):
        make_message_id(ticket_id=1, domain=domain)


@pytest.mark.parametrize("ticket_id", [0, -1, True])
def test_a_ticket_id_is_a_positive_integer(ticket_id: int) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        subject_tag(ticket_id)


def test_the_subject_tag() -> None:
    assert subject_tag(123) == "[#123]"


@pytest.mark.parametrize(
    ("subject", "tagged"),
    [
        ("Printer jams", "[#123] Printer jams"),
        ("Re: [#123] Printer jams", "Re: [#123] Printer jams"),
        ("AW: AW: Printer jams [#123]", "AW: AW: Printer jams [#123]"),
        ("Re: [#99] Other ticket", "[#123] Re: [#99] Other ticket"),
        ("Re: [#1234] Longer id", "[#123] Re: [#1234] Longer id"),
        ("", "[#123]"),
        ("  two\n\tlines ", "[#123] two lines"),
    ],
)
def test_a_tagged_subject_carries_the_tag_once(subject: str, tagged: str) -> None:
    assert tagged_subject(123, subject) == tagged


@pytest.mark.parametrize(
    ("subject", "ticket_id"),
    [
        ("[#123] Printer jams", 123),
        ("Re: AW: [#123] Printer jams", 123),
        ("Printer jams [#45]", 45),
        ("Re: [# 45 ] spaced", 45),
        ("[#7] then [#8]", 7),
        ("Printer #123 jams", None),
        ("[123] no hash", None),
        ("[#0] zero", None),
        ("", None),
    ],
)
def test_the_ticket_id_is_read_from_the_tag_anywhere_in_the_subject(subject: str, ticket_id: int | None) -> None:
    assert ticket_id_from_subject(subject) == ticket_id
