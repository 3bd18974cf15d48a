"""Attachments on the ticket's admin page: listed with links to the API's download (its visibility check, with the
admin's session), deleted by admins only, through the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from itsm.models import Attachment, Event, Ticket
from itsm.services.attachments import attachment_create
from tests.attachments.conftest import download_bytes, stored_files
from tests.conftest import page_text
from tests.tickets.test_admin import _change_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def attachment(ticket: Ticket, requester: Any) -> Attachment:
    return attachment_create(
        ticket=ticket, uploaded_by=requester, filename="vpn <client>.log", content_type="text/plain", data=b"log"
    )


def test_the_ticket_page_lists_its_files_with_links_to_the_download(
    operator: Client, ticket: Ticket, attachment: Attachment
) -> None:
    page = page_text(operator.get(f"/admin/itsm/ticket/{ticket.pk}/change/"))
    url = f"/api/v1/attachments/{attachment.pk}/download/"
    assert f'<a href="{url}">vpn &lt;client&gt;.log</a>' in page
    assert 'name="attachments-0-DELETE"' in page
    download = operator.get(url)  # the admin's session through the API's own check
    assert download.status_code == 200
    assert download_bytes(download) == b"log"


def test_an_agent_sees_the_files_but_cannot_delete_them(ticket: Ticket, attachment: Attachment, agent: Any) -> None:
    client = Client()
    client.force_login(agent)
    page = page_text(client.get(f"/admin/itsm/ticket/{ticket.pk}/change/"))
    assert "vpn &lt;client&gt;.log" in page
    assert 'name="attachments-0-DELETE"' not in page


def test_a_requesters_session_gets_404_for_another_requesters_file(
    ticket: Ticket, attachment: Attachment, other_requester: Any
) -> None:
    client = Client()
    client.force_login(other_requester)
    assert client.get(f"/api/v1/attachments/{attachment.pk}/download/").status_code == 404


def test_an_admin_deletes_a_file_on_the_ticket_page_through_the_service(
    operator: Client,
    ticket: Ticket,
    attachment: Attachment,
    admin: Any,
    media: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    form = _change_form(ticket, **{"attachments-0-DELETE": "on"})
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(f"/admin/itsm/ticket/{ticket.pk}/change/", form)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert not Attachment.objects.exists()
    assert stored_files(media) == []
    removed = Event.objects.get(ticket=ticket, field="attachment", old_value=str(attachment.pk))
    assert (removed.actor, removed.note) == (admin, "removed vpn <client>.log")
