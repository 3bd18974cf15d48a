"""Attachments in S3 (django-storages) against moto's S3 server on loopback: configured from the environment as an
operator would, stored under attachments/<ticket>/ in the bucket, downloaded through the API, deleted with it."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from itsm.models import Ticket
from tests.attachments.conftest import PNG, download_bytes, stored_files, upload
from tests.backups.conftest import MotoServer, s3_client
from tests.system.processes import ROOT, base_env
from tests.test_configuration import PRODUCTION_ENV

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket(moto: MotoServer, settings: Any) -> str:
    """A fresh bucket, configured as the attachments' storage exactly as ITSM_ATTACHMENT_STORAGE=s3 does."""
    name = f"itsm-attachments-{secrets.token_hex(4)}"
    s3_client(moto.url).create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": moto.url,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "file_overwrite": False,
                "default_acl": None,
            },
        },
    }
    return name


def test_an_upload_lands_in_the_bucket_and_comes_back_through_the_api(
    as_requester: APIClient,
    as_admin: APIClient,
    ticket: Ticket,
    moto: MotoServer,
    bucket: str,
    media: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = s3_client(moto.url)
    created = upload(as_requester, ticket.pk, PNG, name="screenshot.png", content_type="image/png")
    assert created.status_code == 201, created.content
    (key,) = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert key.startswith(f"attachments/{ticket.pk}/")
    assert key.endswith(".png")
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == PNG
    assert stored_files(media) == []  # nothing on local disk

    download = as_requester.get(created.json()["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "image/png"
    assert download_bytes(download) == PNG

    with django_capture_on_commit_callbacks(execute=True):
        assert as_admin.delete(f"/api/v1/attachments/{created.json()['id']}/").status_code == 204
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_refused_upload_writes_nothing_to_the_bucket(
    as_requester: APIClient, ticket: Ticket, moto: MotoServer, bucket: str
) -> None:
    refused = upload(as_requester, ticket.pk, b"MZ\x90\x00", name="invoice.pdf", content_type="application/pdf")
    assert refused.status_code == 400
    assert s3_client(moto.url).list_objects_v2(Bucket=bucket).get("KeyCount") == 0


SCRIPT = """
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
name = default_storage.save("attachments/1/probe.txt", ContentFile(b"through the environment"))
print(type(default_storage._wrapped).__name__, name, default_storage.open(name).read().decode())
"""


def _shell(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "shell", "-v", "0", "-c", SCRIPT],
        cwd=ROOT,
        env=base_env(**PRODUCTION_ENV, ITSM_VAR_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_environment_turns_on_s3_with_secrets_from_files(tmp_path: Path, moto: MotoServer) -> None:
    name = f"itsm-attachments-{secrets.token_hex(4)}"
    client = s3_client(moto.url)
    client.create_bucket(Bucket=name)
    secret = tmp_path / "secret_access_key"
    secret.write_text("testing\n")
    result = _shell(
        tmp_path,
        ITSM_ATTACHMENT_STORAGE="s3",
        ITSM_ATTACHMENT_S3_BUCKET=name,
        ITSM_ATTACHMENT_S3_ENDPOINT_URL=moto.url,
        ITSM_ATTACHMENT_S3_ACCESS_KEY_ID="testing",
        ITSM_ATTACHMENT_S3_SECRET_ACCESS_KEY_FILE=str(secret),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "attachments/1/probe.txt", "through", "the", "environment"]
    assert client.get_object(Bucket=name, Key="attachments/1/probe.txt")["Body"].read() == b"through the environment"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ITSM_ATTACHMENT_STORAGE": "s3"}, "ITSM_ATTACHMENT_STORAGE=s3 needs ITSM_ATTACHMENT_S3_BUCKET."),
        ({"ITSM_ATTACHMENT_STORAGE": "ftp"}, "ITSM_ATTACHMENT_STORAGE='ftp': use local or s3."),
    ],
)
def test_a_storage_setting_that_cannot_work_stops_the_start(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = _shell(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr
