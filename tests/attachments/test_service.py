"""attachment_create as the mail intake calls it (bytes or a stream, maybe no known sender), its refusals, and the
rule that no refusal and no failed database write leaves a file in storage."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from itsm.exceptions import InvalidInput, NotPermitted
from itsm.files import clean_filename, effective_type, sniff_type, type_from_name
from itsm.models import Attachment, Comment, Event, Ticket
from itsm.services import attachments as attachment_services
from itsm.services.attachments import Upload, attachment_create, attachment_delete, attachments_staged
from itsm.services.tickets import comment_create, ticket_delete
from tests.attachments.conftest import PNG, stored_files
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db


class OneWayStream(io.BytesIO):
    """A stream that cannot seek (as a mail part may be), counting what was read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def seekable(self) -> bool:
        return False

    def seek(self, *args: Any) -> int:
        raise io.UnsupportedOperation("seek")

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_a_mail_attachment_from_an_unknown_sender_is_stored_from_a_stream(ticket: Ticket, media: Path) -> None:
    stream = OneWayStream(PNG)
    attachment = attachment_create(
        ticket=ticket, uploaded_by=None, filename="image001.png", content_type="application/octet-stream", data=stream
    )
    assert (attachment.content_type, attachment.size, attachment.uploaded_by) == ("image/png", len(PNG), None)
    (path,) = stored_files(media)
    assert path.read_bytes() == PNG
    assert path.name.endswith(".png")
    event = Event.objects.get(ticket=ticket, field="attachment")
    assert (event.actor, event.new_value, event.note) == (None, str(attachment.pk), "image001.png")


def test_a_file_over_the_limit_is_refused_after_reading_just_past_the_limit(
    ticket: Ticket, media: Path, settings: Any
) -> None:
    settings.ITSM_ATTACHMENT_MAX_BYTES = 100_000
    stream = OneWayStream(b"x" * 5_000_000)
    with pytest.raises(InvalidInput) as refused:
        attachment_create(ticket=ticket, uploaded_by=None, filename="big.bin", content_type="", data=stream)
    assert refused.value.errors == {"file": ["The file is larger than 100000 bytes (100000 bytes), the limit."]}
    assert stream.read_bytes <= 100_000 + attachment_services.CHUNK
    assert stored_files(media) == []


def test_when_the_database_write_fails_the_stored_file_is_removed(
    ticket: Ticket, requester: Any, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        assert len(stored_files(media)) == 1  # written, and then...
        raise RuntimeError("the database went away")

    monkeypatch.setattr(attachment_services, "event_record", broken)
    with pytest.raises(RuntimeError):
        attachment_create(ticket=ticket, uploaded_by=requester, filename="a.txt", content_type="text/plain", data=b"a")
    assert stored_files(media) == []
    assert not Attachment.objects.exists()
    assert Ticket.objects.get(pk=ticket.pk).version == ticket.version


def test_a_comment_must_be_on_the_ticket_and_internal_notes_take_staff_files_only(
    ticket: Ticket, requester: Any, agent: Any, note: Comment, media: Path
) -> None:
    other = comment_create(ticket_id=make_ticket(requester).pk, author=requester, body="elsewhere")
    with pytest.raises(InvalidInput, match="not on this ticket"):
        attachment_create(
            ticket=ticket, uploaded_by=agent, filename="a.txt", content_type="text/plain", data=b"a", comment=other
        )
    with pytest.raises(NotPermitted):
        attachment_create(
            ticket=ticket, uploaded_by=requester, filename="a.txt", content_type="text/plain", data=b"a", comment=note
        )
    assert stored_files(media) == []
    internal = attachment_create(
        ticket=ticket, uploaded_by=agent, filename="a.txt", content_type="text/plain", data=b"a", comment=note
    )
    assert Event.objects.get(ticket=ticket, new_value=str(internal.pk)).field == "internal_attachment"


def test_only_admins_delete_and_a_deleted_ticket_takes_its_files_along(
    ticket: Ticket, requester: Any, agent: Any, admin: Any, media: Path, django_capture_on_commit_callbacks: Any
) -> None:
    first, second = (
        attachment_create(ticket=ticket, uploaded_by=requester, filename=name, content_type="", data=b"data")
        for name in ("one.txt", "two.txt")
    )
    with pytest.raises(NotPermitted):
        attachment_delete(attachment_id=first.pk, actor=agent)
    with django_capture_on_commit_callbacks(execute=True):
        attachment_delete(attachment_id=first.pk, actor=admin)
    assert [path.name for path in stored_files(media)] == [Path(str(second.file.name)).name]
    with django_capture_on_commit_callbacks(execute=True):
        ticket_delete(ticket_id=ticket.pk, actor=admin)
    assert stored_files(media) == []


def test_the_allowed_list_narrows_what_is_taken_and_the_denied_list_can_be_changed(
    ticket: Ticket, requester: Any, settings: Any
) -> None:
    settings.ITSM_ATTACHMENT_ALLOWED_TYPES = ["image/*", "application/pdf"]
    assert attachment_create(ticket=ticket, uploaded_by=requester, filename="s.png", content_type="", data=PNG)
    with pytest.raises(InvalidInput, match=r"text/plain are not accepted\. Accepted types: image/"):
        attachment_create(ticket=ticket, uploaded_by=requester, filename="a.txt", content_type="text/plain", data=b"a")
    settings.ITSM_ATTACHMENT_ALLOWED_TYPES = []
    xml = b'<?xml version="1.0"?><config/>'
    with pytest.raises(InvalidInput, match="text/xml"):
        attachment_create(ticket=ticket, uploaded_by=requester, filename="c.xml", content_type="", data=xml)
    settings.ITSM_ATTACHMENT_DENIED_TYPES = [t for t in settings.ITSM_ATTACHMENT_DENIED_TYPES if "xml" not in t]
    stored = attachment_create(ticket=ticket, uploaded_by=requester, filename="c.xml", content_type="", data=xml)
    assert stored.content_type == "text/xml"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\xff\xd8\xff\xe0JFIF", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"PK\x03\x04rest", "application/zip"),
        (b"MZ\x90\x00", "application/x-msdownload"),
        (b"#!/bin/sh\nrm -rf /", "application/x-sh"),
        (b"\n\t <HtMl lang=en>", "text/html"),
        (b"\xef\xbb\xbf<!-- a comment --><p>", "text/html"),
        (b"<a href=x>", "text/html"),
        (b"<?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg'>", "image/svg+xml"),
        (b"<?xml version='1.0'?><feed/>", "text/xml"),
        (b"<about the release>", None),  # "<a" must be followed by a space or ">" to be HTML
        (b"Hello, the VPN is down.", None),
        (b"col1,col2\n1,2\n", None),
    ],
)
def test_the_content_decides_the_type(head: bytes, expected: str | None) -> None:
    assert sniff_type(head) == expected


@pytest.mark.parametrize(
    ("claimed", "sniffed", "named", "stored"),
    [
        ("text/plain", "image/png", "image/png", "image/png"),  # the content wins
        ("image/png", None, "image/png", "application/octet-stream"),  # a claim the content contradicts
        ("text/csv", None, "text/csv", "text/csv"),  # what the content cannot show, the claim says
        ("", None, "text/csv", "text/csv"),
        ("application/octet-stream", None, "text/plain", "text/plain"),
        ("", None, None, "application/octet-stream"),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/zip",
            None,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
)
def test_the_stored_type_believes_a_claim_only_where_the_content_cannot_contradict_it(
    claimed: str, sniffed: str | None, named: str | None, stored: str
) -> None:
    assert effective_type(claimed=claimed, sniffed=sniffed, named=named) == stored


def test_names_are_shown_without_paths_control_characters_or_leading_dots() -> None:
    assert clean_filename("C:\\Users\\rita\\Desktop\\vpn.log") == "vpn.log"
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("evil\r\nX-Header: 1.txt") == "evilX-Header: 1.txt"
    assert clean_filename(".htaccess") == "htaccess"
    assert clean_filename("\x00\x01") == "attachment"
    long = clean_filename("a" * 300 + ".pdf")
    assert (len(long), long[-4:]) == (255, ".pdf")
    assert type_from_name("SETUP.EXE") == "application/x-msdownload"
    assert type_from_name("report.pdf") == "application/pdf"


def test_a_storage_that_cannot_delete_the_file_does_not_hide_why_the_write_failed(
    ticket: Ticket, requester: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_event(**kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    def broken_delete(name: str) -> None:
        raise OSError("the storage went away too")

    monkeypatch.setattr(attachment_services, "event_record", broken_event)
    monkeypatch.setattr(attachment_services.default_storage, "delete", broken_delete)
    with pytest.raises(RuntimeError, match="the database went away"):
        attachment_create(ticket=ticket, uploaded_by=requester, filename="a.txt", content_type="text/plain", data=b"a")
    assert "could not delete attachment file attachments/" in caplog.text


def test_several_files_on_a_reply_are_stored_all_or_none(ticket: Ticket, requester: Any, media: Path) -> None:
    uploads = [Upload("a.log", "text/plain", b"first"), Upload("b.exe", "", b"MZ" + b"\x00" * 64)]

    with pytest.raises(InvalidInput) as refused:
        comment_create(ticket_id=ticket.pk, author=requester, body="Two files", uploads=uploads)

    assert refused.value.errors == {
        "files": ["b.exe: This file is application/x-msdownload (by its content), a type that is not accepted."]
    }
    assert not Comment.objects.exists()
    assert stored_files(media) == []

    comment = comment_create(ticket_id=ticket.pk, author=requester, body="One file", uploads=uploads[:1])
    assert [a.filename for a in comment.attachments.all()] == ["a.log"]
    assert len(stored_files(media)) == 1
    assert Event.objects.filter(ticket=ticket, field="attachment", note="a.log").exists()


def test_a_requester_cannot_put_files_on_an_internal_note_through_staging(
    ticket: Ticket, requester: Any, note: Comment, media: Path
) -> None:
    with pytest.raises(NotPermitted), attachments_staged(uploads=[Upload("a.log", "", b"x")]) as staged:
        staged.record(ticket=ticket, uploaded_by=requester, comment=note)

    assert stored_files(media) == []


@pytest.mark.parametrize(
    ("name", "data", "refused"),
    [
        ("photo.png", PNG, ""),
        ("empty.txt", b"", "The file is empty."),
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60, "not accepted"),
    ],
)
def test_attachment_check_applies_the_rules_without_storing_anything(
    media: Path, name: str, data: bytes, refused: str
) -> None:
    stream = io.BytesIO(data)
    if refused:
        with pytest.raises(InvalidInput) as caught:
            attachment_services.attachment_check(filename=name, content_type="", data=stream)
        assert refused in caught.value.errors["file"][0]
    else:
        attachment_services.attachment_check(filename=name, content_type="", data=stream)
        assert stream.tell() == 0  # left at its start, for attachment_create to read
    assert stored_files(media) == []
    assert not Attachment.objects.exists()
