"""Attachments: every test gets an empty MEDIA_ROOT of its own, so "nothing was stored" can be read off the disk;
S3 is moto's server, as for the backups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from itsm.models import Comment, Ticket
from itsm.services.tickets import comment_create
from tests.backups.conftest import moto  # noqa: F401  (the moto server fixture, shared with the backup tests)
from tests.factories import make_ticket

# A real PNG's first bytes, then filler: the content says image/png whatever the client claims.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def stored_files(media: Path) -> list[Path]:
    return sorted(path for path in media.rglob("*") if path.is_file()) if media.exists() else []


@pytest.fixture
def ticket(requester: Any) -> Ticket:
    return make_ticket(requester, title="VPN drops every 10 minutes")


@pytest.fixture
def note(ticket: Ticket, agent: Any) -> Comment:
    return comment_create(
        ticket_id=ticket.pk, author=agent, body="Internal: the log shows a DNS timeout.", internal=True
    )


def upload(
    client: APIClient,
    ticket_id: int,
    data: bytes,
    *,
    name: str = "vpn.log",
    content_type: str = "text/plain",
    **fields: Any,
) -> Any:
    """POST a multipart upload as a browser would send it."""
    file = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post(f"/api/v1/tickets/{ticket_id}/attachments/", {"file": file, **fields}, format="multipart")


def download_bytes(response: Any) -> bytes:
    return b"".join(response.streaming_content)
