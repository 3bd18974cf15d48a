"""The operator's commands: backup (with progress), backup_verify, and restore (refuses without --yes; restores in
read-only mode, keeps the replaced database, carries the backup catalogue over)."""

from __future__ import annotations

import re
import subprocess
import threading
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from itsm.backup.configured import local_storage
from itsm.backup.postgres import connect, connection_params
from itsm.models import Backup, Ticket
from itsm.services.backups import backup_create
from itsm.services.readonly import read_only_state
from tests.backups.conftest import database_url, sample, seed_tickets
from tests.system.processes import PYTHON, ROOT, base_env


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_backup_shows_progress_and_ends_with_a_verified_backup():
    seed_tickets(50)
    out = command("backup", "--kind", "database", "--tier", "daily")
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.SUCCEEDED
    assert backup.trigger == Backup.Trigger.MANUAL
    assert re.search(r"\[\s*\d+\.\ds\] manifest: \d+ tables", out)
    assert "restore matches the manifest" in out
    assert f"backup #{backup.pk} succeeded and verified" in out
    assert backup.sha256 in out


@pytest.mark.django_db
def test_backup_of_redis_without_redis_configured_fails_with_a_clear_message(settings):
    settings.BACKUP_REDIS_URL = ""
    with pytest.raises(CommandError, match="No Redis is configured"):
        command("backup", "--kind", "redis")


@pytest.mark.django_db(transaction=True)
def test_backup_verify_passes_on_a_good_backup_and_fails_on_a_damaged_one():
    command("backup", "--kind", "media")
    backup = Backup.objects.get()
    assert f"backup #{backup.pk} verified from local" in command("backup_verify", str(backup.pk))
    path = local_storage().path(backup.local_path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CommandError, match="FAILED verification"):
        command("backup_verify", str(backup.pk))


def a_good_backup(**fields: Any) -> Backup:
    """A finished, verified backup row with a local and an S3 copy (files are not needed: nothing may read them)."""
    now = timezone.now()
    defaults: dict[str, Any] = {
        "kind": "database",
        "status": "succeeded",
        "created_at": now,
        "started_at": now,
        "finished_at": now,
        "sha256": "a" * 64,
        "size_bytes": 10,
        "local_path": "database/backup_20250101_000000_database_daily_1.dump",
        "s3_key": "itsm/database/daily/backup_20250101_000000_database_daily_1.dump",
        "verified_ok": True,
        "verified_at": now,
        "verification": {"local": {"ok": True}},
    }
    return Backup.objects.create(**{**defaults, **fields})


@pytest.mark.django_db(transaction=True)
def test_backup_verify_from_s3_without_s3_configured_refuses_and_leaves_the_backup_as_it_was():
    backup = a_good_backup()
    before = Backup.objects.filter(pk=backup.pk).values().get()
    result = subprocess.run(
        [PYTHON, "manage.py", "backup_verify", str(backup.pk), "--source", "s3"],
        cwd=ROOT,
        env=base_env(DATABASE_URL=database_url(), ITSM_VAR_DIR=str(settings.VAR_DIR), BACKUP_S3_BUCKET=""),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"CommandError: backup #{backup.pk} cannot be verified from s3: S3 is not configured (BACKUP_S3_BUCKET is "
        "not set). Nothing was changed; its local copy can be verified with --source local.\n"
    )
    assert Backup.objects.filter(pk=backup.pk).values().get() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "arguments", "message"),
    [
        ({"local_path": ""}, [], "cannot be verified from s3: S3 is not configured"),
        ({}, ["--source", "s3"], "cannot be verified from s3: S3 is not configured"),
        ({"local_deleted_at": timezone.now()}, ["--source", "local"], "cannot be verified from local: it has no local"),
    ],
)
def test_backup_verify_refuses_a_copy_it_cannot_read_without_logging_or_counting_a_failure(
    fields, arguments, message, caplog
):
    backup = a_good_backup(**fields)
    before = Backup.objects.filter(pk=backup.pk).values().get()
    failures = sample("itsm_backup_verifications_total", kind="database", source="s3", outcome="failed")
    with pytest.raises(CommandError, match=message):
        command("backup_verify", str(backup.pk), *arguments)
    assert Backup.objects.filter(pk=backup.pk).values().get() == before
    assert sample("itsm_backup_verifications_total", kind="database", source="s3", outcome="failed") == failures
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


@pytest.mark.django_db
def test_backup_verify_of_an_unknown_id_exits_1_with_a_message():
    result = subprocess.run(
        [PYTHON, "manage.py", "backup_verify", "999999"],
        cwd=ROOT,
        env=base_env(DATABASE_URL=database_url(), ITSM_VAR_DIR=str(settings.VAR_DIR)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "there is no backup #999999" in result.stderr


@pytest.mark.django_db
def test_restore_refuses_without_yes():
    with pytest.raises(CommandError, match="Run again with --yes"):
        command("restore", "1")
    assert read_only_state() is None


@pytest.mark.django_db
def test_restore_of_an_unknown_backup_fails_and_leaves_read_only_mode_off():
    with pytest.raises(CommandError, match="there is no backup #424242"):
        command("restore", "424242", "--yes")
    assert read_only_state() is None


@pytest.mark.django_db(transaction=True)
def test_restore_puts_back_the_backed_up_database_in_read_only_mode_and_keeps_the_replaced_one(drop_databases):
    seed_tickets(120, title="In the backup")
    command("backup")
    backup = Backup.objects.get()
    Ticket.objects.all().delete()
    seed_tickets(5, title="After the backup")
    later = backup_create(kind="media", enqueue=False)  # the catalogue must still know it afterwards

    seen: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(read_only_state() is not None)
            stop.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        out = command("restore", str(backup.pk), "--yes")
    finally:
        stop.set()
        watcher.join()

    kept = re.search(r"the previous content is kept as (\S+)", out)
    assert kept, out
    drop_databases(kept.group(1))
    assert "the restore matches the manifest" in out
    assert "check passed" in out
    assert Ticket.objects.count() == 120
    assert not Ticket.objects.filter(title__startswith="After").exists()
    assert Backup.objects.filter(pk=later.pk).exists()
    assert Backup.objects.get(pk=backup.pk).status == Backup.Status.SUCCEEDED
    assert True in seen
    assert read_only_state() is None
    params = connection_params(connection.settings_dict, name=kept.group(1))
    with connect(params) as previous, previous.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM itsm_ticket WHERE title LIKE 'After the backup%%'")
        assert cursor.fetchone()[0] == 5


@pytest.mark.django_db(transaction=True)
def test_restore_of_a_damaged_backup_changes_nothing():
    seed_tickets(30)
    command("backup")
    backup = Backup.objects.get()
    seed_tickets(3, title="Kept")
    path = local_storage().path(backup.local_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CommandError, match="damaged"):
        command("restore", str(backup.pk), "--yes")
    assert Ticket.objects.count() == 33
    assert read_only_state() is None


@pytest.mark.django_db
def test_restore_of_media_by_file_name_brings_the_files_back(settings):
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True)
    (media / "a.txt").write_text("original")
    command("backup", "--kind", "media")
    backup = Backup.objects.get()
    (media / "a.txt").write_text("changed")
    (media / "b.txt").write_text("new")

    command("restore", str(local_storage().path(backup.local_path)), "--yes")

    assert sorted(p.name for p in media.iterdir()) == ["a.txt"]
    assert (media / "a.txt").read_text() == "original"
    previous = [p for p in media.parent.iterdir() if p.name.startswith("media.before_restore_")]
    assert len(previous) == 1
    assert (previous[0] / "b.txt").read_text() == "new"


@pytest.mark.django_db
def test_restore_of_redis_puts_back_the_keys_of_the_snapshot(settings: Any):
    settings.BACKUP_REDIS_URL = settings.REDIS_URL
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.set("queue:kept", "1")
    client.set("session:ttl", "2", ex=3600)
    command("backup", "--kind", "redis")
    backup = Backup.objects.get()
    client.delete("queue:kept")
    client.set("created:later", "3")
    number = settings.REDIS_URL.rsplit("/", 1)[1]

    out = command("restore", str(backup.pk), "--yes", "--redis-db", number)

    assert f"redis db{number}: 2 keys restored" in out
    assert sorted(client.keys()) == [b"queue:kept", b"session:ttl"]
    assert 3500 < client.ttl("session:ttl") <= 3600
