"""The portal's personas are the suite's (tests/conftest.py), signed in through a session as a browser is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from itsm.models import Service, Ticket
from tests.factories import make_ticket

# A real PNG's first bytes, then filler: the content says image/png whatever the client claims.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
# A Windows executable by its content, whatever its name says.
EXE = b"MZ\x90\x00" + b"\x00" * 200


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    """Every test stores into an empty MEDIA_ROOT of its own, so "nothing was stored" reads off the disk."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def stored_files(media: Path) -> list[Path]:
    return sorted(path for path in media.rglob("*") if path.is_file()) if media.exists() else []


@pytest.fixture
def signed_in(db: Any) -> Callable[..., Client]:
    """A browser-like client with a session of `user`."""

    def make(user: Any, **options: Any) -> Client:
        client = Client(**options)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def rita(signed_in: Callable[[Any], Client], requester: Any) -> Client:
    """The requester's browser."""
    return signed_in(requester)


@pytest.fixture
def service(db: Any) -> Service:
    return Service.objects.create(name="VPN", slug="vpn")


@pytest.fixture
def ticket(requester: Any, service: Service) -> Ticket:
    return make_ticket(requester, title="VPN drops every 10 minutes", description="Since Monday.", service=service)


def png(name: str = "screenshot.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PNG, content_type="image/png")


def text_file(name: str = "vpn.log", data: bytes = b"12:00 connection reset\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/plain")


def exe(name: str = "fix.exe") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, EXE, content_type="application/octet-stream")


def text(response: Any) -> str:
    return str(response.content.decode())
