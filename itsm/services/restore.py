"""Restoring backups: into a scratch database to verify one (after each backup, on demand, and in the monthly
restore drill), and over the live system, the manual's procedure made safe.

The API goes read-only (writes get 503) for the whole restore. A database backup is restored into a new database
and checked against its manifest before anything live is touched; then the live database is swapped out (kept
under a `_before_restore_<time>` name, never dropped), migrations are applied and `manage.py check` runs. The
backup catalogue (the Backup rows) is carried over, so the restored database still knows every backup file.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from itsm import metrics
from itsm.audit import audited_update
from itsm.backup.base import BackupError, Progress, StorageUnavailable, VerificationFailed, no_progress, sha256_of
from itsm.backup.configured import (
    database_is_postgres,
    database_settings,
    decryption_keys,
    dumper_for,
    local_storage,
    postgres_dumper,
    s3_storage,
)
from itsm.backup.encryption import SUFFIX, decrypt_file, is_encrypted
from itsm.backup.media import MediaDumper
from itsm.backup.redis import RedisDumper
from itsm.backup.s3 import ARCHIVE_CLASSES
from itsm.backup.sqlite import SqliteDumper
from itsm.models import Backup
from itsm.services.readonly import read_only_enter, read_only_leave

logger = logging.getLogger(__name__)

EXTENSIONS = {".dump": "database", ".sqlite3.gz": "database", ".rdb": "redis", ".tar.gz": "media"}


@dataclass
class RestoreSource:
    path: Path
    kind: str
    backup: Backup | None

    @property
    def manifest(self) -> dict[str, Any] | None:
        return self.backup.manifest if self.backup is not None else None

    @property
    def label(self) -> str:
        return f"backup #{self.backup.pk}" if self.backup is not None else str(self.path)


def restore_resolve(identifier: str, *, work: Path, progress: Progress = no_progress) -> RestoreSource:
    """A backup id (its local copy, else its S3 copy) or a file path, checked against the recorded SHA-256."""
    if identifier.isdigit():
        backup = Backup.objects.filter(pk=int(identifier)).first()
        if backup is None:
            raise BackupError(f"there is no backup #{identifier}")
        if not backup.sha256:
            raise BackupError(f"backup #{backup.pk} is {backup.status} and has no archive")
        local = local_storage().path(backup.local_path) if backup.has_local_copy else None
        if local is not None and local.exists():
            path = local
        elif backup.has_s3_copy:
            path = fetch_archive(backup, "s3", work, progress)
        else:
            raise BackupError(f"backup #{backup.pk} has no copy left on local disk or in S3")
        kind = backup.kind
    else:
        path = Path(identifier).resolve()
        if not path.is_file():
            raise BackupError(f"{identifier} is neither a backup id nor a file")
        kind = next((k for ext, k in EXTENSIONS.items() if path.name.removesuffix(SUFFIX).endswith(ext)), "")
        if not kind:
            raise BackupError(f"cannot tell the kind of {path.name} (expected {', '.join(EXTENSIONS)})")
        backup = Backup.objects.filter(local_path__endswith=f"/{path.name}").first()
    if backup is not None:
        sha256, _ = sha256_of(path)
        if sha256 != backup.sha256:
            raise BackupError(f"{path} does not match the SHA-256 recorded for backup #{backup.pk}: it is damaged")
        progress(f"{path.name}: SHA-256 matches backup #{backup.pk}")
    else:
        progress(f"{path.name}: no backup record; restoring without a manifest to compare with")
    return RestoreSource(path=in_clear(path, work, progress), kind=kind, backup=backup)


def in_clear(archive: Path, work: Path, progress: Progress) -> Path:
    """The archive itself when it was written in the clear (before BACKUP_ENCRYPTION_KEY was set), else its
    plaintext decrypted into `work`. WrongKey (a BackupError) when no configured key opens it."""
    if not is_encrypted(archive):
        return archive
    clear = work / f"clear-{archive.name.removesuffix(SUFFIX)}"
    decrypt_file(archive, clear, keys=decryption_keys())
    progress(f"{archive.name}: decrypted (age)")
    return clear


def restore_run(
    identifier: str, *, redis_db: int | None = None, migrate: bool = True, progress: Progress = no_progress
) -> dict[str, Any]:
    """The whole procedure for one backup, inside read-only mode. `migrate=False` (an upgrade's rollback) leaves a
    restored database at its own migrations instead of bringing it to this code's."""
    with tempfile.TemporaryDirectory(dir=local_storage().work_dir()) as work:
        source = restore_resolve(identifier, work=Path(work), progress=progress)
        read_only_enter(reason=f"restoring {source.kind} from {source.label}")
        progress("read-only mode on: the API answers writes with 503")
        try:
            if source.kind == Backup.Kind.DATABASE:
                result = _restore_database(source, progress, migrate=migrate)
            elif source.kind == Backup.Kind.MEDIA:
                result = _restore_media(source, progress)
            else:
                result = _restore_redis(source, redis_db, progress)
        finally:
            read_only_leave()
            progress("read-only mode off")
    logger.warning("restored %s from %s: %s", source.kind, source.label, result)
    return {"kind": source.kind, "source": source.label, **result}


def _stamp() -> str:
    return f"{timezone.now():%Y%m%d_%H%M%S}"


def _restore_database(source: RestoreSource, progress: Progress, *, migrate: bool = True) -> dict[str, Any]:
    catalogue: list[dict[str, Any]] = [dict(row) for row in Backup.objects.values()]
    if database_is_postgres():
        if not source.path.name.endswith(".dump"):
            raise BackupError(f"{source.path.name} is not a PostgreSQL backup (pg_dump -Fc, .dump)")
        kept = _swap_postgres(source, progress)
    else:
        if not source.path.name.endswith(".sqlite3.gz"):
            raise BackupError(f"{source.path.name} is not an embedded-mode backup (.sqlite3.gz)")
        database = Path(database_settings()["NAME"])
        kept = str(database.with_name(f"{database.name}.before_restore_{_stamp()}"))
        connections.close_all()
        progress(f"restoring into {database} (the current content is kept in {kept})")
        try:
            SqliteDumper(database).restore_live(source.path, source.manifest, keep_previous=Path(kept))
        except VerificationFailed as exc:
            raise BackupError(f"the backup does not match its manifest, nothing was changed: {exc}") from exc
    if migrate:
        progress("applying migrations")
        call_command("migrate", interactive=False, verbosity=0)
    _merge_catalogue(catalogue)
    progress("running manage.py check")
    call_command("check", verbosity=0)
    progress("check passed")
    return {"previous": kept}


def _swap_postgres(source: RestoreSource, progress: Progress) -> str:
    dumper = postgres_dumper()
    live = str(database_settings()["NAME"])
    stamp = _stamp()
    replacement = f"{live}_restoring_{stamp}"[:63]
    previous = f"{live}_before_restore_{stamp}"[:63]
    dumper.create_database(replacement)
    swapped = False
    try:
        progress(f"restoring into the new database {replacement}")
        dumper.restore_into(source.path, replacement)
        if source.manifest:
            try:
                result = dumper.check_restored(replacement, source.manifest)
            except VerificationFailed as exc:
                raise BackupError(f"the restore does not match the manifest, nothing was changed: {exc}") from exc
            progress(f"the restore matches the manifest: {result['tables']} tables, {result['rows']} rows")
        unknown = _unknown_migrations(dumper.applied_migrations(replacement))
        if unknown:
            names = ", ".join(f"{app}.{name}" for app, name in sorted(unknown)[:5])
            raise BackupError(f"the backup has migrations this code does not know ({names}): deploy that version first")
        connections.close_all()
        progress(f"swapping: {live} becomes {previous}, {replacement} becomes {live}")
        dumper.swap_in(live=live, replacement=replacement, previous=previous)
        swapped = True
    finally:
        if not swapped:
            dumper.drop_database(replacement)
    return previous


def _unknown_migrations(applied: set[tuple[str, str]]) -> set[tuple[str, str]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    known = set(loader.disk_migrations)
    return {(app, name) for app, name in applied if app in loader.migrated_apps and (app, name) not in known}


def _merge_catalogue(rows: list[dict[str, Any]]) -> None:
    """Put back the Backup rows of before the restore (newer backups, newer states), keeping ids."""
    if not rows:
        return
    users = set(get_user_model().objects.values_list("pk", flat=True))
    records = [
        Backup(**{**row, "requested_by_id": row["requested_by_id"] if row["requested_by_id"] in users else None})
        for row in rows
    ]
    fields = [f.name for f in Backup._meta.concrete_fields if not f.primary_key]
    Backup.objects.bulk_create(records, update_conflicts=True, unique_fields=["id"], update_fields=fields)
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Backup]):
            cursor.execute(statement)


def _restore_media(source: RestoreSource, progress: Progress) -> dict[str, Any]:
    root = Path(settings.MEDIA_ROOT)
    kept = root.with_name(f"{root.name}.before_restore_{_stamp()}")
    progress(f"unpacking into {root} (the current files are kept in {kept})")
    MediaDumper(root).restore_live(source.path, source.manifest, keep_previous=kept)
    return {"previous": str(kept) if kept.exists() else None}


def _restore_redis(source: RestoreSource, redis_db: int | None, progress: Progress) -> dict[str, Any]:
    progress("loading the snapshot into a scratch redis-server and copying its keys")
    copied = RedisDumper(settings.BACKUP_REDIS_URL).restore_live(source.path, only_db=redis_db, progress=progress)
    return {"keys": copied}


# --- verification: a restore into scratch -------------------------------------------------------------------------
def verify_archive(backup: Backup, *, source: str, progress: Progress = no_progress) -> Backup:
    """Read the archive from `source` (local or s3) in full, check its SHA-256 and restore it into a scratch
    database (or file) to compare with its manifest; record the outcome on the backup and in the metrics."""
    started = time.perf_counter()
    detail: dict[str, Any]
    with tempfile.TemporaryDirectory(dir=local_storage().work_dir()) as work:
        try:
            archive = fetch_archive(backup, source, Path(work), progress)
            detail = _check_archive(backup, archive, Path(work), progress)
            ok = True
        except VerificationFailed as exc:
            ok, detail = False, {"error": str(exc), **exc.detail}
        except BackupError as exc:
            ok, detail = False, {"error": str(exc)}
    now = timezone.now()
    detail = {"ok": ok, "at": now.isoformat(), "seconds": round(time.perf_counter() - started, 3), **detail}
    verification = {**backup.verification, source: detail}
    audited_update(Backup.objects.filter(pk=backup.pk), verified_at=now, verified_ok=ok, verification=verification)
    backup.refresh_from_db()
    metrics.BACKUP_VERIFICATIONS.labels(kind=backup.kind, source=source, outcome="passed" if ok else "failed").inc()
    if ok:
        metrics.BACKUP_LAST_VERIFIED.labels(kind=backup.kind, tier=backup.tier).set(now.timestamp())
        logger.info("backup %s verified from %s in %.1f s", backup.pk, source, detail["seconds"])
    else:
        logger.error("backup %s failed verification from %s: %s", backup.pk, source, detail.get("error"))
    return backup


def fetch_archive(backup: Backup, source: str, work: Path, progress: Progress) -> Path:
    """The archive of `backup` as a local file: its local copy, or its S3 copy downloaded into `work`."""
    if source == "local":
        if not backup.has_local_copy:
            raise BackupError(f"backup #{backup.pk} has no local copy")
        path = local_storage().path(backup.local_path)
        if not path.exists():
            raise VerificationFailed(f"the local file {path} is missing")
        return path
    if source != "s3":
        raise BackupError(f"unknown verification source {source!r}: local or s3")
    s3 = s3_storage()
    if s3 is None or not backup.has_s3_copy:
        raise BackupError(f"backup #{backup.pk} has no S3 copy (or BACKUP_S3_BUCKET is not set)")
    if backup.s3_storage_class in ARCHIVE_CLASSES:
        raise BackupError(f"backup #{backup.pk} is in {backup.s3_storage_class}: restore the object in S3 first")
    target = work / Path(backup.s3_key).name
    progress(f"downloading s3://{s3.bucket}/{backup.s3_key}")
    try:
        s3.download(backup.s3_key, target)
    except StorageUnavailable as exc:
        raise BackupError(str(exc)) from exc
    return target


def _check_archive(backup: Backup, archive: Path, work: Path, progress: Progress) -> dict[str, Any]:
    sha256, size = sha256_of(archive)
    if sha256 != backup.sha256:
        raise VerificationFailed(
            f"the archive's SHA-256 is {sha256}, not the recorded {backup.sha256} ({size} bytes read, "
            f"{backup.size_bytes} recorded): it is damaged or truncated"
        )
    progress(f"SHA-256 matches ({size} bytes read)")
    clear = in_clear(archive, work, progress)
    return dumper_for(backup.kind).verify(clear, backup.manifest, label=str(backup.pk), progress=progress)


# --- the monthly restore drill -----------------------------------------------------------------------------------
def backup_restore_drill(*, progress: Progress = no_progress) -> dict[str, Any]:
    """Restore the newest verified database backup from S3 (local disk only when no S3 is configured) into a
    scratch database, check it against its manifest, and record the time it took (RTO) and the data's age (RPO)."""
    drill_started_at = timezone.now()
    verified = Backup.objects.filter(kind=Backup.Kind.DATABASE, status=Backup.Status.SUCCEEDED, verified_ok=True)
    if s3_storage() is not None:
        source = "s3"
        candidates = verified.filter(s3_deleted_at__isnull=True).exclude(s3_key="")
        candidates = candidates.exclude(s3_storage_class__in=ARCHIVE_CLASSES)
    else:
        source = "local"
        candidates = verified.filter(local_deleted_at__isnull=True).exclude(local_path="")
    backup = candidates.order_by("-started_at", "-id").first()
    if backup is None:
        raise BackupError(f"restore drill: there is no verified database backup in {source} to restore")
    started = time.perf_counter()
    backup = verify_archive(backup, source=source, progress=progress)
    rto = time.perf_counter() - started
    snapshot_at = _snapshot_time(backup)
    rpo = (drill_started_at - snapshot_at).total_seconds()
    result = backup.verification.get(source, {})
    if not backup.verified_ok:
        raise BackupError(f"restore drill of backup #{backup.pk} from {source} failed: {result.get('error')}")
    metrics.RESTORE_DRILL_RTO.labels(source=source).set(rto)
    metrics.RESTORE_DRILL_RPO.labels(source=source).set(rpo)
    metrics.RESTORE_DRILL_LAST_SUCCESS.labels(source=source).set(timezone.now().timestamp())
    logger.info("restore drill of backup %s from %s: RTO %.1f s, RPO %.0f s", backup.pk, source, rto, rpo)
    return {
        "backup_id": backup.pk,
        "source": source,
        "rto_seconds": round(rto, 3),
        "rpo_seconds": round(rpo, 3),
        "tables": result.get("tables"),
        "rows": result.get("rows"),
    }


def _snapshot_time(backup: Backup) -> datetime:
    text = backup.manifest.get("snapshot_at")
    if text:
        return datetime.fromisoformat(text)
    return backup.started_at or backup.created_at
