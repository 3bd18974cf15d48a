"""docs/runbooks/rebuild-from-s3.md, performed as written on loopback: a platform with a ticket, an attachment and a
Redis key is backed up (encrypted) to moto's S3 server; then on a brand-new `initdb` cluster, a new redis-server and
an empty media directory, with nothing but the bucket, its credentials and the key, the runbook's shell blocks run in
one bash, and the ticket, the attachment's file and the Redis key are there again."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis

from itsm.backup.encryption import generate_key
from itsm.models import Backup
from itsm.services.attachments import attachment_create
from itsm.services.backups import backup_create, backup_run
from tests.backups.conftest import S3_KEYS
from tests.docs.test_docs_commands import blocks_of
from tests.factories import make_ticket, make_user
from tests.system.processes import (
    REDIS_SERVER,
    ROOT,
    base_env,
    free_port,
    postgres_initdb,
    postgres_owned_dir,
    postgres_server,
    redis_server,
    wait_for_port,
    wait_for_postgres,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]

RUNBOOK = ROOT / "docs" / "runbooks" / "rebuild-from-s3.md"
# The block of the operator's own values: the test gives the new host's instead (see new_host_env).
SITE_VALUES = "export DATABASE_URL="


def runbook_script() -> str:
    blocks = [block.text for block in blocks_of(RUNBOOK) if block.lang == "bash"]
    assert sum(SITE_VALUES in text for text in blocks) == 1
    steps = [text for text in blocks if SITE_VALUES not in text]
    assert len(steps) == 4, "the runbook's steps changed: check what this test runs"
    return "set -euo pipefail\n" + "\n".join(steps) + "\n"


def test_the_runbook_rebuilds_tickets_attachments_and_redis_on_a_new_host_from_s3_alone(
    s3: Any, settings: Any, tmp_path: Path
) -> None:
    # --- the old host: data, then its backups, encrypted, in S3 ----------------------------------------------------
    settings.BACKUP_ENCRYPTION_KEY = key = generate_key()
    settings.BACKUP_REDIS_URL = settings.REDIS_URL
    old_redis = redis.Redis.from_url(settings.REDIS_URL)
    old_redis.flushdb()
    old_redis.set("itsm:rebuild-probe", "kept across hosts")
    ticket = make_ticket(make_user("rebuild-requester"), title="Rebuilt from S3 alone")
    attachment = attachment_create(
        ticket=ticket, uploaded_by=None, filename="notes.txt", content_type="text/plain", data=b"the attached file\n"
    )
    for kind in ("database", "redis", "media"):
        backup = backup_run(backup_id=backup_create(kind=kind, tier="daily", enqueue=False).pk)
        assert backup is not None
        assert backup.status == Backup.Status.SUCCEEDED, backup.error
        assert backup.s3_key.endswith(".age")

    # --- the new host: an empty cluster, an empty Redis, an empty media directory ----------------------------------
    root = postgres_owned_dir("itsm-rebuild-")
    pg_port, redis_port = free_port(), free_port()
    postgres_initdb(root / "data", tmp_path / "initdb.log")
    new_postgres = postgres_server(root / "data", pg_port, tmp_path / "postgres.log").start()
    (tmp_path / "redis").mkdir()
    new_redis = redis_server(redis_port, tmp_path / "redis", tmp_path / "redis.log").start()
    media = tmp_path / "new-host" / "media"
    env = base_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{pg_port}/itsm_rebuilt",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        BACKUP_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        ITSM_VAR_DIR=str(tmp_path / "new-host" / "var"),
        ITSM_MEDIA_ROOT=str(media),
        BACKUP_DIR=str(tmp_path / "new-host" / "backups"),
        BACKUP_S3_BUCKET=s3.itsm_bucket,
        BACKUP_S3_PREFIX=settings.BACKUP_S3_PREFIX,
        BACKUP_S3_ENDPOINT_URL=settings.BACKUP_S3_ENDPOINT_URL,
        BACKUP_S3_REGION="us-east-1",
        BACKUP_ENCRYPTION_KEY=key,
        **S3_KEYS,
    )
    try:
        wait_for_postgres(pg_port, timeout=60)
        wait_for_port(redis_port, timeout=30)
        result = subprocess.run(
            ["/bin/bash", "-c", runbook_script()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = f"{result.stdout}\n{result.stderr}"
        assert result.returncode == 0, output
        assert "1 tickets, 1 attachments" in result.stdout, output
        assert "decrypted (age)" in result.stdout, output

        connection = psycopg2.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="itsm_rebuilt")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT title FROM itsm_ticket WHERE id = %s", [ticket.pk])
                assert cursor.fetchone() == ("Rebuilt from S3 alone",)
                cursor.execute("SELECT file FROM itsm_attachment WHERE id = %s", [attachment.pk])
                (name,) = cursor.fetchone()
        finally:
            connection.close()
        assert (media / name).read_bytes() == b"the attached file\n"
        new_db = redis.Redis(port=redis_port, db=int(settings.REDIS_URL.rsplit("/", 1)[1]))
        assert new_db.get("itsm:rebuild-probe") == b"kept across hosts", output
    finally:
        new_redis.stop()
        new_redis.close()
        new_postgres.stop(signal.SIGINT, timeout=60)
        new_postgres.close()
        shutil.rmtree(root, ignore_errors=True)
