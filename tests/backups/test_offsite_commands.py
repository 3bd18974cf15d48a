"""The commands a new host uses before it has any backup record: `backup_s3 list` (newest first, Glacier passed over
by --newest) and `backup_s3 fetch` (checked against the SHA-256 recorded at upload), against moto's S3 server; and
`backup_key`, which makes a key and shows the public half of the configured ones."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from itsm.backup.encryption import generate_key, parse_key, recipient_of
from itsm.services.backups import backup_create, backup_run

pytestmark = pytest.mark.django_db(transaction=True)


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run(kind: str, tier: str = "daily") -> Any:
    backup = backup_run(backup_id=backup_create(kind=kind, tier=tier, enqueue=False).pk)
    assert backup is not None
    assert backup.s3_key, backup.error
    return backup


def test_list_shows_the_archives_newest_first_and_newest_skips_glacier(s3):
    first, second = run("database"), run("database")
    monthly = run("database", tier="monthly")
    media = run("media")
    lines = command("backup_s3", "list").splitlines()
    assert [line.split()[0] for line in lines] == [media.s3_key, monthly.s3_key, second.s3_key, first.s3_key]
    assert lines[1].endswith("GLACIER")
    assert command("backup_s3", "list", "--kind", "database", "--newest").strip() == second.s3_key
    with pytest.raises(CommandError, match="no redis archives in the bucket"):
        command("backup_s3", "list", "--kind", "redis")


def test_fetch_checks_the_sha256_recorded_at_upload(s3, tmp_path: Path):
    backup = run("database")
    fetched = Path(command("backup_s3", "fetch", backup.s3_key, "--to", str(tmp_path)).strip())
    assert fetched == tmp_path / Path(backup.s3_key).name
    assert fetched.stat().st_size == backup.size_bytes
    # The same key written again with other bytes but the metadata of the first upload: a damaged object.
    s3.put_object(Bucket=s3.itsm_bucket, Key=backup.s3_key, Body=b"other bytes", Metadata={"sha256": backup.sha256})
    fetched.unlink()
    with pytest.raises(CommandError, match="does not match the SHA-256 recorded at upload"):
        command("backup_s3", "fetch", backup.s3_key, "--to", str(tmp_path))
    assert not fetched.exists()


def test_the_s3_commands_need_a_bucket(settings):
    settings.BACKUP_S3_BUCKET = ""
    with pytest.raises(CommandError, match="BACKUP_S3_BUCKET is not set"):
        command("backup_s3", "list")


def test_backup_key_generates_a_key_and_shows_the_public_half_of_each_configured_one(settings):
    new = command("backup_key", "--generate").strip()
    assert new.startswith("AGE-SECRET-KEY-1")
    old = generate_key()
    settings.BACKUP_ENCRYPTION_KEY, settings.BACKUP_ENCRYPTION_KEY_FALLBACKS = new, [old]
    assert command("backup_key").splitlines() == [
        f"current   {recipient_of(parse_key(new))}",
        f"fallback  {recipient_of(parse_key(old))}",
    ]
    settings.BACKUP_ENCRYPTION_KEY_FALLBACKS = [old[:-2]]
    with pytest.raises(CommandError, match="BACKUP_ENCRYPTION_KEY_FALLBACKS, key 1: the key's checksum is wrong"):
        command("backup_key")
