"""/api/v1/backups/: agents and admins read, admins queue backups and verifications (202); requesters see nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from itsm.models import Backup
from itsm.services.backups import RUN_TASK, VERIFY_TASK

URL = "/api/v1/backups/"


def finished(**fields: Any) -> Backup:
    defaults: dict[str, Any] = {
        "kind": "database",
        "tier": "daily",
        "status": "succeeded",
        "created_at": timezone.now(),
        "started_at": timezone.now(),
        "finished_at": timezone.now(),
        "sha256": "a" * 64,
        "size_bytes": 10,
        "local_path": "database/backup_20250101_000000_database_daily_1.dump",
        "verified_ok": True,
        "verified_at": timezone.now(),
    }
    return Backup.objects.create(**{**defaults, **fields})


@pytest.fixture
def sent() -> Iterator[Callable[[], list[tuple[str, list[Any]]]]]:
    """The tasks waiting in the real broker's backups queue (Redis), as (task name, args)."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("backups")

    def read() -> list[tuple[str, list[Any]]]:
        messages = [json.loads(raw) for raw in broker.lrange("backups", 0, -1)]
        bodies = [json.loads(base64.b64decode(m["body"])) for m in messages]
        return [(m["headers"]["task"], body[0]) for m, body in zip(messages, bodies, strict=True)]

    yield read
    broker.delete("backups")


def test_a_requester_cannot_see_backups(as_requester):
    assert as_requester.get(URL).status_code == 403
    assert as_requester.post(URL, {"kind": "database"}).status_code == 403


def test_anonymous_clients_get_401(anonymous):
    assert anonymous.get(URL).status_code == 401


def test_an_agent_reads_the_list_and_one_backup_but_cannot_start_one(as_agent, django_assert_max_num_queries):
    backup = finished()
    finished(kind="media")
    with django_assert_max_num_queries(4):
        response = as_agent.get(URL)
    assert response.status_code == 200
    assert [row["kind"] for row in response.json()["results"]] == ["media", "database"]
    detail = as_agent.get(f"{URL}{backup.pk}/").json()
    assert detail["sha256"] == "a" * 64
    assert detail["verified_ok"] is True
    assert as_agent.post(URL, {"kind": "database"}).status_code == 403
    assert as_agent.post(f"{URL}{backup.pk}/verify/").status_code == 403


def test_the_list_filters_by_kind_and_status(as_agent):
    finished()
    finished(kind="redis", status="failed", verified_ok=None)
    response = as_agent.get(URL, {"kind": "redis", "status": "failed"})
    assert [(r["kind"], r["status"]) for r in response.json()["results"]] == [("redis", "failed")]


def test_an_admin_queues_a_backup_and_gets_202_with_the_pending_record(
    as_admin, admin, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(URL, {"kind": "database"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["kind"] == "database"
    assert body["tier"] == "daily"
    backup = Backup.objects.get(pk=body["id"])
    assert backup.trigger == "manual"
    assert backup.requested_by == admin
    assert sent() == [(RUN_TASK, [backup.pk])]


def test_an_unknown_kind_is_a_400_naming_the_field(as_admin):
    response = as_admin.post(URL, {"kind": "everything"})
    assert response.status_code == 400
    assert "kind" in response.json()


def test_an_admin_queues_a_verification(as_admin, sent, django_capture_on_commit_callbacks):
    backup = finished()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(f"{URL}{backup.pk}/verify/")
    assert response.status_code == 202
    assert response.json()["id"] == backup.pk
    assert sent() == [(VERIFY_TASK, [backup.pk])]


def test_verifying_a_backup_only_in_s3_without_s3_configured_is_a_400_and_changes_nothing(
    as_admin, sent, django_capture_on_commit_callbacks, caplog
):
    backup = finished(local_path="", s3_key="itsm/database/daily/backup_1.dump")
    before = Backup.objects.filter(pk=backup.pk).values().get()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(f"{URL}{backup.pk}/verify/")
    assert response.status_code == 400
    assert response.json() == {
        "source": [
            f"Backup #{backup.pk} has no local copy and would be read from S3, but S3 is not configured "
            "(BACKUP_S3_BUCKET is not set)."
        ]
    }
    assert sent() == []
    assert Backup.objects.filter(pk=backup.pk).values().get() == before
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_a_backup_with_a_local_copy_is_verified_from_it_with_s3_unconfigured(
    as_admin, sent, django_capture_on_commit_callbacks
):
    backup = finished(s3_key="itsm/database/daily/backup_1.dump")
    with django_capture_on_commit_callbacks(execute=True):
        assert as_admin.post(f"{URL}{backup.pk}/verify/").status_code == 202
    assert sent() == [(VERIFY_TASK, [backup.pk])]


def test_verifying_a_backup_that_has_not_finished_is_409(as_admin):
    pending = Backup.objects.create(kind="database", created_at=timezone.now())
    response = as_admin.post(f"{URL}{pending.pk}/verify/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_ready"


def test_verifying_an_unknown_backup_is_404(as_admin):
    assert as_admin.post(f"{URL}999999/verify/").status_code == 404
