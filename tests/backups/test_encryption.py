"""Archives encrypted at rest (BACKUP_ENCRYPTION_KEY): no row of the database, no Redis key and no media file can be
read from the stored bytes, on local disk or in S3 (moto's server); verification and restore with the key give
everything back; a wrong or missing key fails clearly and changes nothing; an earlier key still opens the archives
taken with it; archives from before encryption still restore."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError

from itsm.backup.configured import local_storage
from itsm.backup.encryption import MAGIC, generate_key, parse_key, recipient_of
from itsm.models import Backup, Ticket
from itsm.services.backups import backup_create, backup_run, backup_verify
from itsm.services.readonly import read_only_state
from tests.backups.conftest import seed_tickets

pytestmark = pytest.mark.django_db(transaction=True)

# What a clear pg_dump custom archive always shows, compressed or not: its magic and its table of contents.
CLEAR_DUMP_SIGNS = (b"PGDMP", b"itsm_ticket", b"CREATE TABLE")


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run(kind: str) -> Backup:
    backup = backup_run(backup_id=backup_create(kind=kind, tier="daily", enqueue=False).pk)
    assert backup is not None
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    return backup


@pytest.fixture
def key(settings: Any) -> str:
    settings.BACKUP_ENCRYPTION_KEY = generate_key()
    settings.BACKUP_ENCRYPTION_KEY_FALLBACKS = []
    return str(settings.BACKUP_ENCRYPTION_KEY)


@pytest.fixture
def redis_db(settings: Any) -> redis.Redis:
    settings.BACKUP_REDIS_URL = settings.REDIS_URL  # this test's own Redis database on the shared server
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    return client


def stored_copies(backup: Backup, s3: Any) -> dict[str, bytes]:
    local = local_storage().path(backup.local_path).read_bytes()
    remote = s3.get_object(Bucket=s3.itsm_bucket, Key=backup.s3_key)["Body"].read()
    return {"local": local, "s3": remote}


def test_no_row_key_or_file_can_be_read_from_the_stored_archives_on_disk_or_in_s3(key, s3, redis_db, settings):
    marker = f"marker-{secrets.token_hex(8)}"
    seed_tickets(40, title=marker)
    redis_db.set(f"itsm:{marker}", marker)  # an RDB keeps short strings as they are: a clear one shows them
    media = Path(settings.MEDIA_ROOT) / "attachments"
    media.mkdir(parents=True)
    (media / f"{marker}.txt").write_text(marker)
    for kind in ("database", "redis", "media"):
        backup = run(kind)
        assert backup.local_path.endswith(".age")
        assert backup.s3_key.endswith(".age")
        assert backup.verified_ok is True
        assert backup.manifest["encrypted_to"] == recipient_of(parse_key(key))
        for where, data in stored_copies(backup, s3).items():
            assert data.startswith(MAGIC), (kind, where)
            assert marker.encode() not in data, (kind, where)
            for sign in CLEAR_DUMP_SIGNS:
                assert sign not in data, (kind, where, sign)


def test_the_same_backups_taken_without_a_key_do_show_their_content(s3, redis_db, settings):
    # The counterpart of the test above: what it looks for is there when nothing is encrypted.
    settings.BACKUP_ENCRYPTION_KEY = ""
    marker = f"marker-{secrets.token_hex(8)}"
    seed_tickets(40, title=marker)
    redis_db.set(f"itsm:{marker}", marker)
    database, snapshot = run("database"), run("redis")
    assert all(sign in stored_copies(database, s3)["s3"] for sign in CLEAR_DUMP_SIGNS)
    assert marker.encode() in stored_copies(snapshot, s3)["local"]


def test_a_restore_with_the_key_gives_the_rows_back_and_a_wrong_or_missing_key_changes_nothing(
    key, settings, drop_databases
):
    marker = f"marker-{secrets.token_hex(8)}"
    seed_tickets(25, title=marker)
    backup = run("database")
    Ticket.objects.all().delete()
    seed_tickets(3, title="After the backup")

    settings.BACKUP_ENCRYPTION_KEY = generate_key()
    with pytest.raises(CommandError, match="was encrypted with another key: none of the configured keys"):
        command("restore", str(backup.pk), "--yes")
    settings.BACKUP_ENCRYPTION_KEY = ""
    with pytest.raises(CommandError, match="is encrypted and no key is configured: set BACKUP_ENCRYPTION_KEY"):
        command("restore", str(backup.pk), "--yes")
    assert Ticket.objects.count() == 3
    assert not Ticket.objects.filter(title__startswith=marker).exists()
    assert read_only_state() is None
    assert not list(local_storage().work_dir().iterdir()), "no clear file may be left behind"

    settings.BACKUP_ENCRYPTION_KEY = key
    out = command("restore", str(backup.pk), "--yes")
    kept = re.search(r"the previous content is kept as (\S+)", out)
    assert kept, out
    drop_databases(kept.group(1))
    assert "decrypted (age)" in out
    assert "the restore matches the manifest" in out
    assert Ticket.objects.filter(title__startswith=marker).count() == 25
    assert not Ticket.objects.filter(title__startswith="After").exists()


def test_verification_with_a_wrong_key_fails_and_says_which_key_is_needed(key, settings):
    backup = run("database")
    settings.BACKUP_ENCRYPTION_KEY = generate_key()
    with pytest.raises(CommandError, match=r"FAILED verification: .* was encrypted with another key"):
        command("backup_verify", str(backup.pk))
    assert Backup.objects.get(pk=backup.pk).verified_ok is False


def test_after_a_rotation_the_old_key_as_a_fallback_still_opens_the_old_archives(key, settings):
    old = run("database")
    settings.BACKUP_ENCRYPTION_KEY = new_key = generate_key()
    settings.BACKUP_ENCRYPTION_KEY_FALLBACKS = [key]
    assert backup_verify(backup_id=old.pk).verified_ok is True
    new = run("database")
    assert new.manifest["encrypted_to"] == recipient_of(parse_key(new_key))
    settings.BACKUP_ENCRYPTION_KEY_FALLBACKS = []
    assert backup_verify(backup_id=old.pk).verified_ok is False
    assert backup_verify(backup_id=new.pk).verified_ok is True


def test_archives_taken_before_encryption_still_verify_and_restore(settings):
    settings.BACKUP_ENCRYPTION_KEY = ""
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True)
    (media / "old.txt").write_text("from before encryption")
    backup = run("media")
    assert not backup.local_path.endswith(".age")
    assert not local_storage().path(backup.local_path).read_bytes().startswith(MAGIC)
    settings.BACKUP_ENCRYPTION_KEY = generate_key()
    assert backup_verify(backup_id=backup.pk).verified_ok is True
    shutil.rmtree(media)
    command("restore", str(backup.pk), "--yes")
    assert (media / "old.txt").read_text() == "from before encryption"


@pytest.mark.skipif(shutil.which("age") is None, reason="the reference age tool is not installed")
def test_the_reference_age_tool_decrypts_an_archive_with_the_key(key, tmp_path):
    backup = run("database")
    (tmp_path / "key.txt").write_text(key + "\n")
    clear = subprocess.run(
        ["age", "--decrypt", "--identity", str(tmp_path / "key.txt"), str(local_storage().path(backup.local_path))],
        capture_output=True,
        check=True,
    ).stdout
    assert clear.startswith(b"PGDMP")
