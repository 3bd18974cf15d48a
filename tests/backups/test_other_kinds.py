"""Redis (an RDB fetched from the live server), media files (tar.gz) and the embedded mode's SQLite: each is
verified by a full read and a restore, and a damaged file fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from itsm.backup.base import VerificationFailed, no_progress
from itsm.backup.configured import local_storage
from itsm.backup.redis import RedisDumper, check_rdb_file
from itsm.backup.sqlite import SqliteDumper
from itsm.models import Backup
from itsm.services.backups import backup_create, backup_run, backup_verify
from tests.system.processes import free_port, redis_server, wait_for_port

pytestmark = pytest.mark.django_db


def run(kind: str) -> Backup:
    backup = backup_run(backup_id=backup_create(kind=kind, tier="daily", enqueue=False).pk)
    assert backup is not None
    return backup


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def redis_db(settings: Any) -> redis.Redis:
    settings.BACKUP_REDIS_URL = settings.REDIS_URL  # this test's own Redis database on the shared server
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    return client


def test_a_redis_backup_is_an_rdb_snapshot_that_a_scratch_redis_server_loads(redis_db):
    redis_db.set("itsm:probe", "kept")
    backup = run("redis")
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    path = local_storage().path(backup.local_path)
    assert path.name.endswith(f"_redis_daily_{backup.pk}.rdb")
    assert check_rdb_file(path)["checksum"] == "ok"
    db = settings.REDIS_URL.rsplit("/", 1)[1]
    assert backup.verification["local"]["loaded"] is True
    assert backup.verification["local"]["keyspace"][f"db{db}"] >= 1


def test_a_damaged_redis_backup_fails_verification(redis_db):
    redis_db.set("itsm:probe", "x" * 1000)
    backup = run("redis")
    flip_a_byte(local_storage().path(backup.local_path))
    # Keep the recorded checksum in step, so that the load into redis-server is what must catch it.
    from itsm.backup.base import sha256_of

    Backup.objects.filter(pk=backup.pk).update(sha256=sha256_of(local_storage().path(backup.local_path))[0])
    backup = backup_verify(backup_id=backup.pk)
    assert backup.verified_ok is False
    assert "redis-server refused the snapshot" in backup.verification["local"]["error"]
    with pytest.raises(VerificationFailed):
        check_rdb_file(local_storage().path(backup.local_path))


def test_a_media_backup_holds_every_file_and_a_changed_archive_fails(settings):
    media = Path(settings.MEDIA_ROOT)
    (media / "attachments" / "2025").mkdir(parents=True)
    (media / "attachments" / "2025" / "screenshot.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 40)
    (media / "readme.txt").write_text("hello")
    backup = run("media")
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert backup.manifest["files"] == 2
    assert backup.manifest["bytes"] == 4 + 256 * 40 + 5
    path = local_storage().path(backup.local_path)
    assert path.name.endswith(".tar.gz")

    path.write_bytes(path.read_bytes()[:-20])
    backup = backup_verify(backup_id=backup.pk)
    assert backup.verified_ok is False


def test_an_empty_media_root_is_a_valid_backup_of_nothing():
    backup = run("media")
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert backup.manifest["files"] == 0


def test_the_embedded_sqlite_database_is_copied_online_compressed_and_checked(tmp_path):
    live = tmp_path / "itsm.sqlite3"
    conn = sqlite3.connect(live)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE ticket (id INTEGER PRIMARY KEY, title TEXT, due REAL)")
    conn.executemany("INSERT INTO ticket (title, due) VALUES (?, ?)", [(f"t{i}", i / 3) for i in range(1000)])
    conn.commit()
    dumper = SqliteDumper(live)
    archive = tmp_path / "backup.sqlite3.gz"

    manifest = dumper.dump(archive, progress=no_progress)  # while `conn` stays open, as the platform's would

    assert manifest["tables"]["main.ticket"]["rows"] == 1000
    assert archive.read_bytes()[:2] == b"\x1f\x8b"
    assert dumper.verify(archive, manifest, label="t", progress=no_progress)["rows"] == 1000
    conn.execute("DELETE FROM ticket WHERE id > 10")
    conn.commit()
    with pytest.raises(VerificationFailed, match="rows restored"):
        dumper.verify(archive, {"tables": {"main.ticket": {"rows": 10, "hash": "0"}}}, label="t", progress=no_progress)

    dumper.restore_live(archive, manifest, keep_previous=tmp_path / "before.sqlite3")

    assert conn.execute("SELECT count(*) FROM ticket").fetchone()[0] == 1000
    conn.close()
    truncated = tmp_path / "truncated.sqlite3.gz"
    truncated.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(VerificationFailed, match="does not decompress"):
        dumper.verify(truncated, manifest, label="t", progress=no_progress)


def test_a_redis_backup_without_any_redis_configured_is_refused(settings):
    from itsm.exceptions import InvalidInput

    settings.BACKUP_REDIS_URL = ""
    with pytest.raises(InvalidInput, match="No Redis is configured"):
        backup_create(kind="redis", enqueue=False)


@pytest.mark.slow
def test_a_restore_of_every_database_puts_each_key_back_in_its_own_database(tmp_path, settings):
    # A Redis of the test's own: a restore of every database empties each one of the server it restores into.
    port = free_port()
    with redis_server(port, tmp_path, tmp_path / "redis.log").start():
        wait_for_port(port, timeout=30)
        settings.BACKUP_REDIS_URL = f"redis://127.0.0.1:{port}/0"  # a /0 in the URL must not win over each db
        for number in (2, 5):
            redis.Redis(port=port, db=number).set(f"in-db{number}", number)
        backup = run("redis")
        redis.Redis(port=port).flushall()
        archive = local_storage().path(backup.local_path)
        RedisDumper(settings.BACKUP_REDIS_URL).restore_live(archive, progress=no_progress)
        assert [redis.Redis(port=port, db=number).keys() for number in (0, 2, 5)] == [[], [b"in-db2"], [b"in-db5"]]
