"""The S3 copy, against moto's S3 server on loopback: it lands with a matching checksum, an unreachable S3 fails
and retries while the local copy is kept, and the restore drill reads from S3."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from itsm.backup.base import StorageUnavailable
from itsm.backup.configured import local_storage
from itsm.models import Backup, JobRun
from itsm.services.backups import backup_apply_retention, backup_create, backup_run
from itsm.tasks.backups import restore_drill, run_backup
from tests.backups.conftest import sample, seed_tickets

pytestmark = pytest.mark.django_db(transaction=True)


def object_sha256(client: Any, key: str) -> str:
    body = client.get_object(Bucket=client.itsm_bucket, Key=key)["Body"].read()
    return hashlib.sha256(body).hexdigest()


def test_a_daily_backup_lands_in_s3_with_the_local_sha256(s3):
    seed_tickets(200)
    backup = backup_run(backup_id=backup_create(kind="database", tier="daily", enqueue=False).pk)
    assert backup is not None
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert backup.s3_key == f"itsm/database/daily/{Path(backup.local_path).name}"
    head = s3.head_object(Bucket=s3.itsm_bucket, Key=backup.s3_key)
    assert head["ContentLength"] == backup.size_bytes
    assert head["Metadata"]["sha256"] == backup.sha256
    assert object_sha256(s3, backup.s3_key) == backup.sha256
    assert backup.verification["upload"]["checked_by"] == "etag"
    assert backup.s3_storage_class == "STANDARD"


def test_hourly_backups_stay_local_and_monthly_ones_go_to_the_glacier_class(s3, settings):
    hourly = backup_run(backup_id=backup_create(kind="database", tier="hourly", enqueue=False).pk)
    monthly = backup_run(backup_id=backup_create(kind="database", tier="monthly", enqueue=False).pk)
    assert hourly is not None
    assert monthly is not None
    assert hourly.status == monthly.status == Backup.Status.SUCCEEDED
    assert hourly.s3_key == ""
    head = s3.head_object(Bucket=s3.itsm_bucket, Key=monthly.s3_key)
    assert head["StorageClass"] == settings.BACKUP_S3_MONTHLY_STORAGE_CLASS == "GLACIER"
    # The manual keeps monthly backups in S3 only, but the newest verified backup is never deleted: its local
    # copy goes after the next backup verified.
    monthly.refresh_from_db()
    assert monthly.local_deleted_at is None
    backup_run(backup_id=backup_create(kind="database", tier="hourly", enqueue=False).pk)
    monthly.refresh_from_db()
    assert monthly.local_deleted_at is not None
    assert not local_storage().path(monthly.local_path).exists()
    assert s3.head_object(Bucket=s3.itsm_bucket, Key=monthly.s3_key)["ContentLength"] == monthly.size_bytes


def test_a_large_archive_is_uploaded_in_parts_and_checked(s3, settings):
    settings.BACKUP_S3_PART_SIZE_MB = 5
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True)
    (media / "big.bin").write_bytes(os.urandom(11 * 1024 * 1024))  # random: gzip cannot shrink it
    backup = backup_run(backup_id=backup_create(kind="media", tier="daily", enqueue=False).pk)
    assert backup is not None
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert backup.verification["upload"]["etag"].endswith("-3")
    assert object_sha256(s3, backup.s3_key) == backup.sha256


def test_with_s3_stopped_the_job_retries_then_fails_and_the_local_copy_is_kept(s3, moto, settings):
    settings.BACKUP_UPLOAD_RETRIES = 2
    settings.BACKUP_UPLOAD_RETRY_DELAY_SECONDS = 0
    backup = backup_create(kind="database", tier="daily", enqueue=False)
    before = sample("itsm_backup_failures_total", kind="database", tier="daily", stage="upload")
    moto.stop()
    try:
        run_backup.apply(args=(backup.pk,))  # eager: Celery runs each retry right away
    finally:
        moto.start()
    backup.refresh_from_db()
    assert backup.status == Backup.Status.FAILED
    assert backup.attempts == 3  # the first try and two retries
    assert "S3 upload failed" in backup.error
    assert "the local copy is kept" in backup.error
    assert backup.verified_ok is True
    assert backup.s3_key == ""
    assert local_storage().path(backup.local_path).exists()
    assert sample("itsm_backup_failures_total", kind="database", tier="daily", stage="upload") == before + 1


def test_a_retry_after_s3_comes_back_only_uploads(s3, moto):
    backup = backup_create(kind="database", tier="daily", enqueue=False)
    moto.stop()
    try:
        with pytest.raises(StorageUnavailable):
            backup_run(backup_id=backup.pk, final_attempt=False)
    finally:
        moto.start()
    s3.create_bucket(Bucket=s3.itsm_bucket)  # moto keeps its data in memory: a restart lost the bucket
    backup.refresh_from_db()
    assert backup.status == Backup.Status.RUNNING
    dumped = (backup.local_path, backup.sha256, backup.verified_at)

    retried = backup_run(backup_id=backup.pk, final_attempt=False)

    assert retried is not None
    assert retried.status == Backup.Status.SUCCEEDED, retried.error
    assert retried.attempts == 2
    assert (retried.local_path, retried.sha256, retried.verified_at) == dumped  # not dumped or verified again
    assert object_sha256(s3, retried.s3_key) == retried.sha256


def test_the_monthly_restore_drill_restores_the_newest_verified_backup_from_s3(s3):
    seed_tickets(400)
    older = backup_run(backup_id=backup_create(kind="database", tier="daily", enqueue=False).pk)
    newest = backup_run(backup_id=backup_create(kind="database", tier="daily", enqueue=False).pk)
    assert older is not None
    assert newest is not None
    local_storage().delete(newest.local_path)  # the drill must not need local disk

    detail = restore_drill()

    assert detail is not None
    assert detail["backup_id"] == newest.pk
    assert detail["source"] == "s3"
    assert detail["rto_seconds"] > 0
    assert 0 < detail["rpo_seconds"] < 600
    assert detail["rows"] >= 400
    run = JobRun.objects.get(job="backup_restore_drill")
    assert run.status == JobRun.Status.SUCCEEDED
    newest.refresh_from_db()
    assert newest.verification["s3"]["ok"] is True
    rto = sample("itsm_backup_restore_drill_rto_seconds", source="s3")
    rpo = sample("itsm_backup_restore_drill_rpo_seconds", source="s3")
    assert rto == pytest.approx(detail["rto_seconds"], abs=1e-3)
    assert rpo == pytest.approx(detail["rpo_seconds"], abs=1e-3)


def test_retention_deletes_expired_copies_from_s3_and_local_disk_and_logs_each(s3, caplog):
    old = backup_run(backup_id=backup_create(kind="database", tier="daily", enqueue=False).pk)
    new = backup_run(backup_id=backup_create(kind="database", tier="daily", enqueue=False).pk)
    assert old is not None
    assert new is not None
    Backup.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=31))

    with caplog.at_level(logging.INFO, logger="itsm.services.backups"):
        deletions = backup_apply_retention(kind="database")

    assert sorted((d.backup_id, d.location) for d in deletions) == [(old.pk, "local"), (old.pk, "s3")]
    old.refresh_from_db()
    assert old.local_deleted_at is not None
    assert old.s3_deleted_at is not None
    assert not local_storage().path(old.local_path).exists()
    assert s3.list_objects_v2(Bucket=s3.itsm_bucket, Prefix=old.s3_key)["KeyCount"] == 0
    assert s3.list_objects_v2(Bucket=s3.itsm_bucket, Prefix=new.s3_key)["KeyCount"] == 1
    logged = [r.getMessage() for r in caplog.records if "retention deleted" in r.getMessage()]
    assert len(logged) == 2
    assert all("30 days" in message for message in logged)
