"""The attachment endpoints as each persona uses them: who may upload, list and download what, what a download
looks like, and what a refused upload leaves behind (nothing)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from itsm.models import Attachment, Comment, Event, Ticket
from itsm.services.attachments import attachment_create
from itsm.services.tickets import comment_create
from tests.attachments.conftest import PNG, download_bytes, stored_files, upload
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def test_the_requester_attaches_a_file_to_their_own_ticket_and_downloads_it_unchanged(
    as_requester: APIClient, ticket: Ticket, media: Path
) -> None:
    data = b"2026-12-03 09:00:01 tunnel down: DNS timeout\n" * 100
    response = upload(as_requester, ticket.pk, data, name="vpn client.log")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["filename"] == "vpn client.log"
    assert body["content_type"] == "text/plain"
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["comment"] is None
    assert body["download_url"] == f"http://testserver/api/v1/attachments/{body['id']}/download/"
    assert response["Location"] == body["download_url"]
    (path,) = stored_files(media)
    assert path.relative_to(media).parts[:2] == ("attachments", str(ticket.pk))
    assert "vpn" not in path.name  # a random name: the uploaded one is only shown

    download = as_requester.get(body["download_url"])
    assert download.status_code == 200
    assert download_bytes(download) == data


def test_a_download_is_an_attachment_of_its_stored_type_that_no_browser_renders(
    as_requester: APIClient, ticket: Ticket
) -> None:
    attachment = upload(as_requester, ticket.pk, PNG, name='screen "shot".png', content_type="text/plain").json()
    response = as_requester.get(attachment["download_url"], HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    # The content decides: a PNG sent as text/plain is stored and served as image/png.
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="screen \\"shot\\".png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Content-Length"] == str(len(PNG))


def test_a_file_name_outside_ascii_is_offered_as_rfc_5987(as_requester: APIClient, ticket: Ticket) -> None:
    attachment = upload(as_requester, ticket.pk, b"Kosten", name="../../Angebot für Müller.txt").json()
    assert attachment["filename"] == "Angebot für Müller.txt"
    response = as_requester.get(attachment["download_url"])
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''Angebot%20f%C3%BCr%20M%C3%BCller.txt"


def test_the_other_requester_gets_404_for_the_ticket_its_list_and_each_download(
    as_requester: APIClient, as_other_requester: APIClient, ticket: Ticket, media: Path
) -> None:
    attachment = upload(as_requester, ticket.pk, b"private").json()
    assert as_other_requester.get(f"/api/v1/tickets/{ticket.pk}/attachments/").status_code == 404
    assert as_other_requester.get(attachment["download_url"]).status_code == 404
    refused = upload(as_other_requester, ticket.pk, b"intruder")
    assert refused.status_code == 404
    assert len(stored_files(media)) == 1


def test_an_internal_notes_attachment_is_hidden_from_the_requester_everywhere(
    as_requester: APIClient, as_agent: APIClient, ticket: Ticket, note: Comment
) -> None:
    internal = upload(as_agent, ticket.pk, b"DNS server 10.1.2.3 is flaky", name="dns.txt", comment=note.pk)
    assert internal.status_code == 201, internal.content
    assert internal.json()["comment"] == note.pk
    public = upload(as_agent, ticket.pk, b"Please install client 5.2", name="howto.txt")

    listed = as_requester.get(f"/api/v1/tickets/{ticket.pk}/attachments/").json()["results"]
    assert [item["id"] for item in listed] == [public.json()["id"]]
    assert as_requester.get(internal.json()["download_url"]).status_code == 404
    timeline = as_requester.get(f"/api/v1/tickets/{ticket.pk}/events/").json()["results"]
    assert "dns.txt" not in str(timeline)
    assert "howto.txt" in str(timeline)

    staff_list = as_agent.get(f"/api/v1/tickets/{ticket.pk}/attachments/").json()["results"]
    assert {item["id"] for item in staff_list} == {internal.json()["id"], public.json()["id"]}
    assert as_agent.get(internal.json()["download_url"]).status_code == 200


def test_a_comment_must_be_one_the_uploader_sees_on_that_ticket(
    as_requester: APIClient, requester: Any, ticket: Ticket, note: Comment, media: Path
) -> None:
    """An internal note, a comment of another ticket and no comment at all read the same: no such comment."""
    elsewhere = comment_create(ticket_id=make_ticket(requester).pk, author=requester, body="On my other ticket")
    for comment_id in (note.pk, elsewhere.pk, 10**6):
        response = upload(as_requester, ticket.pk, b"x", comment=comment_id)
        assert response.status_code == 400
        assert response.json() == {"comment": [f'Invalid pk "{comment_id}" - object does not exist.']}
    mine = comment_create(ticket_id=ticket.pk, author=requester, body="The log you asked for")
    assert upload(as_requester, ticket.pk, b"log", comment=mine.pk).json()["comment"] == mine.pk
    assert len(stored_files(media)) == 1


def test_agents_and_admins_attach_to_any_ticket_and_the_upload_is_on_its_timeline(
    as_agent: APIClient, as_admin: APIClient, agent: Any, ticket: Ticket
) -> None:
    before = Ticket.objects.get(pk=ticket.pk).version
    for client in (as_agent, as_admin):
        assert upload(client, ticket.pk, b"notes").status_code == 201
    assert Ticket.objects.get(pk=ticket.pk).version == before + 2  # the ETag moves, as for a comment
    event = Event.objects.filter(ticket=ticket, field="attachment").first()
    assert event is not None
    assert (event.kind, event.actor, event.note) == ("changed", agent, "vpn.log")


@pytest.mark.parametrize(
    ("name", "content_type", "data", "message"),
    [
        ("invoice.pdf", "application/pdf", b"MZ\x90\x00" + b"\x00" * 64, "application/x-msdownload (by its content)"),
        (
            "report.txt",
            "text/plain",
            b"\x7fELF\x02\x01\x01" + b"\x00" * 64,
            "application/x-executable (by its content)",
        ),
        ("notes.txt", "text/plain", b"  <!DOCTYPE html><script>alert(1)</script>", "text/html (by its content)"),
        ("logo.png", "image/png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml"),
        ("setup.exe", "application/octet-stream", b"just bytes", "application/x-msdownload (by its name)"),
        ("run.ps1", "text/plain", b"Get-Process", "application/x-powershell (by its name)"),
        ("page.txt", "text/html", b"hello", "text/html (as sent)"),
        ("utf16.txt", "text/plain", "<html><body>x</body></html>".encode("utf-16"), "text/html (by its content)"),
    ],
)
def test_executables_and_markup_a_browser_runs_are_refused_and_nothing_is_stored(
    as_requester: APIClient, ticket: Ticket, media: Path, name: str, content_type: str, data: bytes, message: str
) -> None:
    response = upload(as_requester, ticket.pk, data, name=name, content_type=content_type)
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["file"]
    assert message in response.json()["file"][0]
    assert stored_files(media) == []
    assert not Attachment.objects.exists()
    assert not Event.objects.filter(field="attachment").exists()


def test_a_file_over_the_limit_is_a_400_naming_the_file_and_nothing_is_stored(
    as_requester: APIClient, ticket: Ticket, media: Path, settings: Any
) -> None:
    settings.ITSM_ATTACHMENT_MAX_BYTES = 1000
    assert upload(as_requester, ticket.pk, b"x" * 1000).status_code == 201
    response = upload(as_requester, ticket.pk, b"x" * 1001)
    assert response.status_code == 400
    assert response.json() == {"file": ["The file is larger than 1000 bytes (1000 bytes), the limit."]}
    assert len(stored_files(media)) == 1
    assert Attachment.objects.count() == 1


def test_a_body_far_over_the_limit_is_a_json_413_before_it_is_read(
    as_requester: APIClient, ticket: Ticket, media: Path, settings: Any
) -> None:
    settings.ITSM_ATTACHMENT_MAX_BYTES = 1000
    response = upload(as_requester, ticket.pk, b"x" * 200_000)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"The request body is larger than {1000 + 64 * 1024} bytes: an attachment may have at most 1000 "
        "bytes.",
        "code": "request_too_large",
    }
    assert stored_files(media) == []


def test_an_empty_file_a_missing_file_and_a_json_body_are_refused_with_json(
    as_requester: APIClient, ticket: Ticket
) -> None:
    url = f"/api/v1/tickets/{ticket.pk}/attachments/"
    empty = upload(as_requester, ticket.pk, b"")
    assert (empty.status_code, empty.json()) == (400, {"file": ["The submitted file is empty."]})
    missing = as_requester.post(url, {"comment": ""}, format="multipart")
    assert (missing.status_code, missing.json()) == (400, {"file": ["No file was submitted."]})
    as_json = as_requester.post(url, {"file": "aGVsbG8="}, format="json")
    assert as_json.status_code == 415
    assert as_json.json()["code"] == "unsupported_media_type"


def test_only_admins_delete_an_attachment_and_its_file_goes_with_it(
    as_requester: APIClient,
    as_agent: APIClient,
    as_admin: APIClient,
    ticket: Ticket,
    media: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    attachment = upload(as_requester, ticket.pk, b"old config").json()
    url = f"/api/v1/attachments/{attachment['id']}/"
    for client in (as_requester, as_agent):
        assert client.delete(url).status_code == 403
    assert len(stored_files(media)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.delete(url)
    assert response.status_code == 204
    assert not Attachment.objects.exists()
    event = Event.objects.filter(ticket=ticket, field="attachment").last()
    assert event is not None
    assert event.note == "removed vpn.log"
    assert stored_files(media) == []  # removed once the deletion was committed


def test_a_download_whose_file_is_gone_from_storage_is_a_json_404(
    as_agent: APIClient, ticket: Ticket, requester: Any, media: Path
) -> None:
    attachment = attachment_create(
        ticket=ticket, uploaded_by=requester, filename="a.txt", content_type="text/plain", data=b"a"
    )
    (media / str(attachment.file.name)).unlink()
    response = as_agent.get(f"/api/v1/attachments/{attachment.pk}/download/")
    assert response.status_code == 404
    assert response.json()["code"] == "file_missing"


def test_listing_attachments_costs_the_same_few_queries_for_3_or_30(
    as_agent: APIClient, ticket: Ticket, requester: Any, agent: Any, django_assert_max_num_queries: Any
) -> None:
    url = f"/api/v1/tickets/{ticket.pk}/attachments/?page_size=50"
    note = comment_create(ticket_id=ticket.pk, author=agent, body="note", internal=True)
    for count in (3, 30):
        while Attachment.objects.count() < count:
            n = Attachment.objects.count()
            attachment_create(
                ticket=ticket,
                uploaded_by=[requester, agent][n % 2],
                filename=f"file-{n}.txt",
                content_type="text/plain",
                data=f"file {n}".encode(),
                comment=note if n % 4 == 1 else None,
            )
        # The token and its user, the ticket, the page.
        with django_assert_max_num_queries(3):
            response = as_agent.get(url)
        assert len(response.json()["results"]) == count


def test_a_format_suffix_is_served_or_a_404_never_a_500(
    as_requester: APIClient, as_admin: APIClient, ticket: Ticket
) -> None:
    attachment = upload(as_requester, ticket.pk, b"suffix").json()
    assert download_bytes(as_requester.get(f"/api/v1/attachments/{attachment['id']}/download.json")) == b"suffix"
    assert as_requester.get(f"/api/v1/attachments/{attachment['id']}/download.5").status_code == 404
    assert as_admin.delete("/api/v1/attachments/0.5/").status_code == 404  # found by schemathesis: was a 500
    listed = as_requester.get(f"/api/v1/tickets/{ticket.pk}/attachments.json")
    assert [item["id"] for item in listed.json()["results"]] == [attachment["id"]]


def test_the_requesters_etag_does_not_count_internal_notes_or_their_files(
    as_requester: APIClient, as_agent: APIClient, ticket: Ticket, note: Comment
) -> None:
    """An ETag that moved with every internal note told the requester how many there were."""
    before = as_requester.get(f"/api/v1/tickets/{ticket.pk}/")["ETag"]
    assert (
        upload(as_agent, ticket.pk, b"DNS server 10.1.2.3 is flaky", name="dns.txt", comment=note.pk).status_code == 201
    )
    noted = as_agent.post(f"/api/v1/tickets/{ticket.pk}/comments/", {"body": "VPN?", "internal": True}, format="json")
    assert noted.status_code == 201, noted.content
    assert as_requester.get(f"/api/v1/tickets/{ticket.pk}/")["ETag"] == before

    replied = as_agent.post(f"/api/v1/tickets/{ticket.pk}/comments/", {"body": "On it."}, format="json")
    assert replied.status_code == 201
    after_reply = as_requester.get(f"/api/v1/tickets/{ticket.pk}/")["ETag"]
    assert after_reply != before
    assert upload(as_agent, ticket.pk, b"Please install client 5.2", name="howto.txt").status_code == 201
    assert as_requester.get(f"/api/v1/tickets/{ticket.pk}/")["ETag"] != after_reply
