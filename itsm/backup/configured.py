"""The backup machinery as this deployment's settings configure it: where archives are kept (local disk, S3), the
dumper of each kind for the configured database, Redis and media, and the lock a run holds. The services in
itsm.services.backups and itsm.services.restore ask here instead of reading settings themselves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dj_database_url
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.conf import settings
from django.db import connections

from itsm.backup.base import BackupError, Dumper
from itsm.backup.cluster import RestoredCluster, pg_bin_dir
from itsm.backup.encryption import KeyInvalid, parse_key
from itsm.backup.local import LocalStorage
from itsm.backup.locks import DRILL_NAMESPACE, advisory_lock, file_lock
from itsm.backup.media import MediaDumper
from itsm.backup.pgbackrest import PgBackRest, PitrNotConfigured
from itsm.backup.postgres import PostgresDumper, connection_params
from itsm.backup.redis import RedisDumper
from itsm.backup.s3 import S3Storage
from itsm.backup.sqlite import SqliteDumper
from itsm.databases import direct_settings
from itsm.models import Backup

DATABASE, REDIS, MEDIA = Backup.Kind.DATABASE, Backup.Kind.REDIS, Backup.Kind.MEDIA


def local_storage() -> LocalStorage:
    return LocalStorage(Path(settings.BACKUP_DIR))


def s3_storage() -> S3Storage | None:
    if not settings.BACKUP_S3_BUCKET:
        return None
    return S3Storage(
        bucket=settings.BACKUP_S3_BUCKET,
        prefix=settings.BACKUP_S3_PREFIX,
        endpoint_url=settings.BACKUP_S3_ENDPOINT_URL,
        region=settings.BACKUP_S3_REGION,
        access_key_id=settings.BACKUP_S3_ACCESS_KEY_ID,
        secret_access_key=settings.BACKUP_S3_SECRET_ACCESS_KEY,
        part_size=settings.BACKUP_S3_PART_SIZE_MB * 1024 * 1024,
    )


def encryption_key() -> X25519PrivateKey | None:
    """The key new archives are encrypted to (BACKUP_ENCRYPTION_KEY); None: they are written in the clear."""
    if not settings.BACKUP_ENCRYPTION_KEY:
        return None
    try:
        return parse_key(settings.BACKUP_ENCRYPTION_KEY)
    except KeyInvalid as exc:
        raise KeyInvalid(f"BACKUP_ENCRYPTION_KEY: {exc}") from None


def decryption_keys() -> list[X25519PrivateKey]:
    """Every key that may open an archive: the current one, then BACKUP_ENCRYPTION_KEY_FALLBACKS in order."""
    keys = [key] if (key := encryption_key()) is not None else []
    for number, text in enumerate(settings.BACKUP_ENCRYPTION_KEY_FALLBACKS, start=1):
        try:
            keys.append(parse_key(text))
        except KeyInvalid as exc:
            raise KeyInvalid(f"BACKUP_ENCRYPTION_KEY_FALLBACKS, key {number}: {exc}") from None
    return keys


def database_settings() -> dict[str, Any]:
    """The database to dump, restore and lock: past the pooler when there is one (itsm/databases.py)."""
    return direct_settings()


def database_is_postgres() -> bool:
    return connections["default"].vendor == "postgresql"


def postgres_dumper() -> PostgresDumper:
    return PostgresDumper(
        database_settings(), bin_dir=settings.BACKUP_PG_BIN_DIR, restore_jobs=settings.BACKUP_RESTORE_JOBS
    )


def dumper_for(kind: str) -> Dumper:
    if kind == DATABASE:
        if database_is_postgres():
            return postgres_dumper()
        return SqliteDumper(Path(database_settings()["NAME"]))
    if kind == REDIS:
        return RedisDumper(settings.BACKUP_REDIS_URL)
    if kind == MEDIA:
        return MediaDumper(Path(settings.MEDIA_ROOT))
    raise BackupError(f"unknown backup kind {kind!r}")


def storage_class_for(tier: str) -> str:
    if tier == Backup.Tier.MONTHLY:
        return str(settings.BACKUP_S3_MONTHLY_STORAGE_CLASS)
    return str(settings.BACKUP_S3_STORAGE_CLASS)


@contextmanager
def run_lock(backup_id: int) -> Iterator[bool]:
    """Held while one process runs the backup: PostgreSQL's advisory lock, or a file lock beside SQLite."""
    if database_is_postgres():
        with advisory_lock(connection_params(database_settings()), backup_id) as held:
            yield held
    else:
        with file_lock(Path(settings.BACKUP_DIR) / ".locks" / f"backup-{backup_id}.lock") as held:
            yield held


@contextmanager
def drill_lock(drill_id: int) -> Iterator[bool]:
    """Held by the process running PITR drill `drill_id` (PITR needs PostgreSQL, so an advisory lock): free while
    the drill is recorded as running means its process died."""
    with advisory_lock(connection_params(database_settings()), drill_id, namespace=DRILL_NAMESPACE) as held:
        yield held


def pgbackrest() -> PgBackRest:
    """The pgBackRest stanza that archives the platform's cluster; PitrNotConfigured without BACKUP_PITR_STANZA."""
    if not settings.BACKUP_PITR_STANZA:
        raise PitrNotConfigured(
            "point-in-time recovery is not configured: set BACKUP_PITR_STANZA (docs/configuration.md#backups)"
        )
    return PgBackRest(
        stanza=settings.BACKUP_PITR_STANZA,
        config=Path(settings.BACKUP_PITR_CONFIG),
        binary=settings.BACKUP_PITR_BIN,
        os_user=settings.BACKUP_PITR_OS_USER,
        timeout=settings.BACKUP_PITR_RESTORE_TIMEOUT_SECONDS,
    )


def pitr_database() -> dict[str, Any]:
    """psycopg2 keywords of the archived cluster's database: BACKUP_PITR_DATABASE_URL, else the platform's own."""
    if settings.BACKUP_PITR_DATABASE_URL:
        return connection_params(dict(dj_database_url.parse(settings.BACKUP_PITR_DATABASE_URL)))
    return connection_params(database_settings())


def restored_cluster(data: Path, log: Path) -> RestoredCluster:
    return RestoredCluster(
        data, bin_dir=pg_bin_dir(settings.BACKUP_PG_BIN_DIR), os_user=settings.BACKUP_PITR_OS_USER, log=log
    )
