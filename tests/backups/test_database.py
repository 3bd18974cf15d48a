"""Database backups on real PostgreSQL: dump with a same-snapshot manifest, verify by restoring, and fail loudly
on a damaged file or an old pg_dump."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from itsm.backup.base import sha256_of
from itsm.backup.configured import local_storage, postgres_dumper
from itsm.backup.postgres import SCRATCH_PREFIX, connect, connection_params
from itsm.models import Backup, JobRun, Ticket
from itsm.services.backups import backup_apply_retention, backup_create, backup_run, backup_verify
from itsm.tasks.backups import scheduled_backup
from tests.backups.conftest import sample, seed_tickets

pytestmark = pytest.mark.django_db(transaction=True)


def take_backup(tier: str = "daily") -> Backup:
    backup = backup_create(kind="database", tier=tier, enqueue=False)
    result = backup_run(backup_id=backup.pk)
    assert result is not None
    return result


def scratch_databases() -> list[str]:
    """This test database's scratch databases (other test runs may share the server)."""
    with connection.cursor() as cursor:
        prefix = f"{SCRATCH_PREFIX}{postgres_dumper().tag}_"
        cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix])
        return [row[0] for row in cursor.fetchall()]


def test_a_database_backup_is_dumped_verified_by_a_restore_and_recorded():
    seed_tickets(500)
    backup = take_backup()
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert backup.verified_ok is True
    assert backup.attempts == 1
    assert re.fullmatch(r"database/backup_\d{8}_\d{6}_database_daily_\d+\.dump", backup.local_path)
    path = local_storage().path(backup.local_path)
    assert sha256_of(path) == (backup.sha256, backup.size_bytes)
    assert path.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    tables = backup.manifest["tables"]
    assert tables["public.itsm_ticket"]["rows"] == 500
    assert tables["public.itsm_backup"]["rows"] == 1
    assert backup.manifest["snapshot"]
    assert backup.verification["local"]["ok"] is True
    assert backup.verification["local"]["tables"] == len(tables)
    assert scratch_databases() == []  # the scratch database is dropped


def test_a_backup_restored_into_another_database_has_the_same_rows(drop_databases):
    seed_tickets(300, title="Before backup")
    backup = take_backup()
    Ticket.objects.filter(title__endswith=" 7").delete()
    Ticket.objects.update(title="Changed after the backup")

    dumper = postgres_dumper()
    other = f"{SCRATCH_PREFIX}{dumper.tag}_restore_{backup.pk}"
    drop_databases(other)
    dumper.create_database(other)
    dumper.restore_into(local_storage().path(backup.local_path), other)
    assert dumper.check_restored(other, backup.manifest)["rows"] >= 300
    with connect(connection_params(connection.settings_dict, name=other)) as restored, restored.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE title LIKE 'Before backup %%') FROM itsm_ticket")
        assert cursor.fetchone() == (300, 300)
    assert dumper.manifest_of(other) != dumper.manifest_of(connection.settings_dict["NAME"])


def test_the_manifest_and_the_dump_see_the_same_snapshot_while_writes_go_on():
    seed_tickets(2000)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            seed_tickets(50, title="Written during the backup")
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        backup = take_backup()
    finally:
        stop.set()
        thread.join()
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert Ticket.objects.count() > backup.manifest["tables"]["public.itsm_ticket"]["rows"] > 2000


def damage(backup: Backup, how: str) -> Path:
    path = local_storage().path(backup.local_path)
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) * 6 // 10]
    else:
        data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_truncated_or_altered_backup_fails_verification_and_counts_in_a_metric(how):
    seed_tickets(3000)
    backup = take_backup()
    before = sample("itsm_backup_verifications_total", kind="database", source="local", outcome="failed")
    damage(backup, how)

    backup = backup_verify(backup_id=backup.pk)

    assert backup.verified_ok is False
    assert "SHA-256" in backup.verification["local"]["error"]
    after = sample("itsm_backup_verifications_total", kind="database", source="local", outcome="failed")
    assert after == before + 1


def test_the_restore_catches_a_truncated_archive_even_when_the_recorded_checksum_was_updated_to_match():
    seed_tickets(3000)
    backup = take_backup()
    path = damage(backup, "truncate")
    Backup.objects.filter(pk=backup.pk).update(sha256=sha256_of(path)[0])

    backup = backup_verify(backup_id=backup.pk)

    assert backup.verified_ok is False
    assert "does not restore" in backup.verification["local"]["error"]
    assert scratch_databases() == []


def test_the_manifest_catches_an_archive_of_other_data_even_when_the_recorded_checksum_was_updated_to_match():
    seed_tickets(300)
    first = take_backup()
    seed_tickets(7)
    second = take_backup()
    path = local_storage().path(first.local_path)
    path.write_bytes(local_storage().path(second.local_path).read_bytes())
    Backup.objects.filter(pk=first.pk).update(sha256=second.sha256)

    first = backup_verify(backup_id=first.pk)

    assert first.verified_ok is False
    error = first.verification["local"]["error"]
    assert "does not match the manifest" in error
    assert "table public.itsm_ticket: 307 rows restored, 300 in the manifest" in error


def test_a_backup_that_failed_verification_is_never_the_newest_verified_for_retention(settings):
    first = take_backup(tier="hourly")
    second = take_backup(tier="hourly")
    damage(second, "flip")
    backup_verify(backup_id=second.pk)
    # Make the first one expired: with the second unverified, there is no newer verified backup to allow it.
    Backup.objects.filter(pk=first.pk).update(started_at=first.created_at.replace(year=2000))
    assert backup_apply_retention(kind="database") == []
    assert local_storage().path(first.local_path).exists()


def test_a_pg_dump_older_than_the_server_is_refused_with_a_clear_message(settings, tmp_path):
    fake = tmp_path / "old-client"
    fake.mkdir()
    script = fake / "pg_dump"
    script.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    script.chmod(0o755)
    settings.BACKUP_PG_BIN_DIR = str(fake)
    before = sample("itsm_backup_failures_total", kind="database", tier="daily", stage="dump")

    backup = take_backup()

    assert backup.status == Backup.Status.FAILED
    assert "pg_dump 9 is older than the PostgreSQL server (15)" in backup.error
    assert "BACKUP_PG_BIN_DIR" in backup.error
    assert list(Path(settings.BACKUP_DIR).rglob("*.dump*")) == []
    assert sample("itsm_backup_failures_total", kind="database", tier="daily", stage="dump") == before + 1


def test_running_a_finished_backup_again_does_nothing():
    backup = take_backup()
    again = backup_run(backup_id=backup.pk)
    assert again is not None
    assert again.attempts == 1
    assert again.finished_at == backup.finished_at
    assert len(list(Path(local_storage().root).rglob("*.dump"))) == 1


@pytest.mark.django_db(transaction=False)  # on_commit callbacks are captured, not sent to the broker
def test_a_second_beat_message_for_the_same_slot_makes_no_second_backup(django_capture_on_commit_callbacks: Any):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = scheduled_backup("database", "hourly")
        second = scheduled_backup("database", "hourly")
    assert first is not None
    assert second is None
    assert Backup.objects.filter(kind="database", tier="hourly", trigger="scheduled").count() == 1
    assert JobRun.objects.filter(job="backup_database_hourly").count() == 1
    assert len(callbacks) == 1  # one run queued


def test_every_connection_of_a_backup_is_named_itsm_backup_so_operators_can_spare_it(tmp_path, settings):
    # pg_dump and pg_restore take their application_name from PGAPPNAME: wrappers record what they were given.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        real = Path(settings.BACKUP_PG_BIN_DIR) / tool if settings.BACKUP_PG_BIN_DIR else shutil.which(tool)
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\nprintf "%s" "$PGAPPNAME" > {tmp_path / tool}.appname\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
    settings.BACKUP_PG_BIN_DIR = str(bin_dir)
    named: list[str] = []

    def progress(message: str) -> None:
        if message.startswith("manifest:"):  # the snapshot's transaction is open, pg_dump runs or just ran
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
                named.extend(row[0] for row in cursor.fetchall())

    dumper = postgres_dumper()
    manifest = dumper.dump(tmp_path / "db.dump", progress=progress)
    dumper.verify(tmp_path / "db.dump", manifest, label="appname", progress=progress)
    assert "itsm-backup" in named
    assert (tmp_path / "pg_dump.appname").read_text() == "itsm-backup"
    assert (tmp_path / "pg_restore.appname").read_text() == "itsm-backup"
