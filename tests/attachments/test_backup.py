"""The media backup carries attachments: one uploaded, backed up, lost from storage and restored downloads
byte-identical (its recorded SHA-256)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from itsm.models import Attachment, Backup, Ticket
from itsm.services.backups import backup_create, backup_run, backup_verify
from itsm.services.restore import restore_run
from tests.attachments.conftest import download_bytes, stored_files, upload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _backup_dir(settings: Any, tmp_path: Path) -> None:
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_S3_BUCKET = ""


def test_an_attachment_lost_from_storage_comes_back_byte_identical_from_the_media_backup(
    as_requester: APIClient, ticket: Ticket, media: Path
) -> None:
    # A pcap's magic number, then random bytes (which gzip cannot shrink; and no chance of a denied signature first).
    data = b"\xd4\xc3\xb2\xa1" + os.urandom(300_000)
    created = upload(as_requester, ticket.pk, data, name="capture.pcap", content_type="application/vnd.tcpdump.pcap")
    assert created.status_code == 201, created.content
    attachment = Attachment.objects.get(pk=created.json()["id"])
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()

    backup = backup_run(backup_id=backup_create(kind="media", tier="daily", enqueue=False).pk)
    assert backup is not None
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert (backup.manifest["files"], backup.manifest["bytes"]) == (1, len(data))
    assert backup_verify(backup_id=backup.pk).verified_ok is True

    (media / str(attachment.file.name)).unlink()
    assert as_requester.get(created.json()["download_url"]).json()["code"] == "file_missing"

    restore_run(str(backup.pk))

    (restored,) = stored_files(media)
    assert restored.relative_to(media).as_posix() == attachment.file.name
    download = as_requester.get(created.json()["download_url"])
    assert download.status_code == 200
    assert hashlib.sha256(download_bytes(download)).hexdigest() == attachment.sha256
