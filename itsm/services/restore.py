"""Restoring a backup over the live system: the manual's procedure, made safe.

The API goes read-only (writes get 503) for the whole restore. A database backup is restored into a new database
and checked against its manifest before anything live is touched; then the live database is swapped out (kept
under a `_before_restore_<time>` name, never dropped), migrations are applied and `manage.py check` runs. The
backup catalogue (the Backup rows) is carried over, so the restored database still knows every backup file.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from itsm.backup.base import BackupError, Progress, VerificationFailed, no_progress, sha256_of
from itsm.backup.media import MediaDumper
from itsm.backup.redis import RedisDumper
from itsm.backup.sqlite import SqliteDumper
from itsm.models import Backup
from itsm.services import backups
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
        local = backups.local_storage().path(backup.local_path) if backup.has_local_copy else None
        if local is not None and local.exists():
            path = local
        elif backup.has_s3_copy:
            path = backups.fetch_archive(backup, "s3", work, progress)
        else:
            raise BackupError(f"backup #{backup.pk} has no copy left on local disk or in S3")
        kind = backup.kind
    else:
        path = Path(identifier).resolve()
        if not path.is_file():
            raise BackupError(f"{identifier} is neither a backup id nor a file")
        kind = next((k for ext, k in EXTENSIONS.items() if path.name.endswith(ext)), "")
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
    return RestoreSource(path=path, kind=kind, backup=backup)


def restore_run(identifier: str, *, redis_db: int | None = None, progress: Progress = no_progress) -> dict[str, Any]:
    """The whole procedure for one backup, inside read-only mode."""
    with tempfile.TemporaryDirectory(dir=backups.local_storage().work_dir()) as work:
        source = restore_resolve(identifier, work=Path(work), progress=progress)
        read_only_enter(reason=f"restoring {source.kind} from {source.label}")
        progress("read-only mode on: the API answers writes with 503")
        try:
            if source.kind == Backup.Kind.DATABASE:
                result = _restore_database(source, progress)
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


def _restore_database(source: RestoreSource, progress: Progress) -> dict[str, Any]:
    catalogue: list[dict[str, Any]] = [dict(row) for row in Backup.objects.values()]
    if backups.database_is_postgres():
        if not source.path.name.endswith(".dump"):
            raise BackupError(f"{source.path.name} is not a PostgreSQL backup (pg_dump -Fc, .dump)")
        kept = _swap_postgres(source, progress)
    else:
        if not source.path.name.endswith(".sqlite3.gz"):
            raise BackupError(f"{source.path.name} is not an embedded-mode backup (.sqlite3.gz)")
        database = Path(backups.database_settings()["NAME"])
        kept = str(database.with_name(f"{database.name}.before_restore_{_stamp()}"))
        connections.close_all()
        progress(f"restoring into {database} (the current content is kept in {kept})")
        try:
            SqliteDumper(database).restore_live(source.path, source.manifest, keep_previous=Path(kept))
        except VerificationFailed as exc:
            raise BackupError(f"the backup does not match its manifest, nothing was changed: {exc}") from exc
    progress("applying migrations")
    call_command("migrate", interactive=False, verbosity=0)
    _merge_catalogue(catalogue)
    progress("running manage.py check")
    call_command("check", verbosity=0)
    progress("check passed")
    return {"previous": kept}


def _swap_postgres(source: RestoreSource, progress: Progress) -> str:
    dumper = backups.postgres_dumper()
    live = str(backups.database_settings()["NAME"])
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
