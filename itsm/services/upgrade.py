"""Upgrading a release's database: the migration plan shown first, a pre-upgrade backup, the migrations under the
lock the replicas share, and, when a migration fails, the way back said exactly (or taken, with `rollback`).

A pre-upgrade backup is a database backup with trigger `pre_upgrade`: verified by a restore like every backup,
listed in /api/v1/backups/, and never deleted by retention (itsm.services.backups) until an operator removes it
with `upgrade_backup_remove` once the release has proven itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.core.management import call_command
from django.db import connection, connections
from django.db.migrations import operations
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from itsm import databases
from itsm.audit import audited_update
from itsm.backup.base import BackupError, Progress, no_progress
from itsm.backup.configured import local_storage, s3_storage
from itsm.exceptions import InvalidInput
from itsm.models import Backup
from itsm.services.backups import backup_create, backup_run
from itsm.services.restore import restore_run

logger = logging.getLogger(__name__)

# The advisory lock docker/migrate.py takes: every replica's migrations and an upgrade take turns. Any constant;
# it only has to be the same in every process.
MIGRATION_LOCK = 4_157_243_001

# Operations that are reversible in schema but lose the data they remove: the plan says so.
DROPS_DATA = (operations.RemoveField, operations.DeleteModel)


@dataclass(frozen=True)
class PlannedMigration:
    app: str
    name: str
    operations: list[str]
    irreversible: list[str] = field(default_factory=list)
    drops_data: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"


class UpgradeFailed(Exception):
    """The upgrade stopped; `way_back` is what the operator does next, `backup_id` the pre-upgrade backup."""

    def __init__(self, message: str, *, way_back: str = "", backup_id: int | None = None) -> None:
        super().__init__(message)
        self.way_back = way_back
        self.backup_id = backup_id


@dataclass
class UpgradeResult:
    plan: list[PlannedMigration]
    backup_id: int | None = None
    applied: bool = False


# --- the plan ------------------------------------------------------------------------------------------------------
def upgrade_plan() -> list[PlannedMigration]:
    """The migrations `migrate` would apply now, in order (what `migrate --plan` lists), each with its operations
    and the ones that cannot be reversed or drop data."""
    executor = MigrationExecutor(connections["default"])
    planned: list[PlannedMigration] = []
    for migration, backwards in executor.migration_plan(executor.loader.graph.leaf_nodes()):
        if backwards:  # only when a migration was removed from the code; migrate would unapply it
            planned.append(PlannedMigration(migration.app_label, migration.name, ["unapply"], ["unapply"]))
            continue
        described = [op.describe() for op in migration.operations]
        irreversible = [op.describe() for op in migration.operations if not op.reversible]
        drops = [op.describe() for op in migration.operations if isinstance(op, DROPS_DATA)]
        planned.append(PlannedMigration(migration.app_label, migration.name, described, irreversible, drops))
    return planned


def upgrade_plan_text(plan: list[PlannedMigration]) -> str:
    if not plan:
        return "Migration plan: no migrations to apply."
    irreversible = sum(1 for m in plan if m.irreversible)
    lines = [f"Migration plan: {len(plan)} to apply, {irreversible} of them irreversible:"]
    for migration in plan:
        flags = (["IRREVERSIBLE"] if migration.irreversible else []) + (["DROPS DATA"] if migration.drops_data else [])
        lines.append(f"  {migration.label}" + (f"  [{', '.join(flags)}]" if flags else ""))
        for description in migration.operations:
            mark = " (irreversible)" if description in migration.irreversible else ""
            mark += " (drops data)" if description in migration.drops_data else ""
            lines.append(f"    {description}{mark}")
    return "\n".join(lines)


# --- the lock ------------------------------------------------------------------------------------------------------
@contextmanager
def migration_lock() -> Iterator[None]:
    """Hold the migration lock for the block (waiting for a replica that migrates). On PostgreSQL only."""
    if connection.vendor != "postgresql":
        yield
        return
    if databases.is_direct():
        # Behind PgBouncer in transaction pooling a session lock must be taken past it (lock and unlock could
        # otherwise land on two server connections, leaving the lock held for good); the direct session has no
        # statement timeout to lift.
        databases.session_fetchone("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        try:
            yield
        finally:
            databases.session_fetchone("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
        return
    with connection.cursor() as cursor:
        # Waiting for another replica's migration must not hit ITSM_DB_STATEMENT_TIMEOUT_MS.
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        cursor.execute("RESET statement_timeout")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])


# --- the upgrade ---------------------------------------------------------------------------------------------------
def way_back_text(*, backup_id: int, previous_image: str) -> str:
    image = previous_image or "the image this installation ran before the upgrade"
    return "\n".join(
        [
            f"The way back (docs/runbooks/upgrade.md#the-way-back): the pre-upgrade backup is #{backup_id}.",
            f"  1. Go back to the previous image: {image}",
            "  2. With that image, restore the pre-upgrade backup (the API is read-only meanwhile; the database as",
            "     the failed migration left it is kept under a _before_restore_ name):",
            f"       python manage.py restore {backup_id} --yes",
            "  3. Start the previous release again; keep the backup until the fixed release is in.",
        ]
    )


def upgrade_run(
    *,
    previous_image: str = "",
    rollback: bool = False,
    stdout: TextIO | Any = None,
    progress: Progress = no_progress,
) -> UpgradeResult:
    """Show the plan, take and verify a pre-upgrade backup, apply the migrations. Raises UpgradeFailed with the way
    back when the backup or a migration fails; with `rollback`, the pre-upgrade backup is restored first."""
    plan = upgrade_plan()
    progress(upgrade_plan_text(plan))
    if not plan:
        return UpgradeResult(plan=plan)
    backup = backup_create(kind=Backup.Kind.DATABASE, trigger=Backup.Trigger.PRE_UPGRADE, enqueue=False)
    progress(f"pre-upgrade backup #{backup.pk}: dump, then verify by a restore into a scratch database")
    result = backup_run(backup_id=backup.pk, final_attempt=True, progress=progress)
    if result is None or result.status != Backup.Status.SUCCEEDED:
        error = result.error if result is not None else "it is being run by another process"
        raise UpgradeFailed(f"the pre-upgrade backup #{backup.pk} failed, so nothing was migrated: {error}")
    progress(f"pre-upgrade backup #{backup.pk} verified ({result.size_bytes} bytes); applying the migrations")
    try:
        with migration_lock():
            call_command("migrate", interactive=False, stdout=stdout)
    except Exception as exc:
        logger.exception("upgrade: a migration failed; the pre-upgrade backup is #%s", backup.pk)
        failure = f"a migration failed: {type(exc).__name__}: {exc}"
        way_back = way_back_text(backup_id=backup.pk, previous_image=previous_image)
        if rollback:
            way_back = _roll_back(backup.pk, previous_image=previous_image, progress=progress)
        raise UpgradeFailed(failure, way_back=way_back, backup_id=backup.pk) from exc
    return UpgradeResult(plan=plan, backup_id=backup.pk, applied=True)


def _roll_back(backup_id: int, *, previous_image: str, progress: Progress) -> str:
    """Restore the pre-upgrade backup now, without applying this release's migrations again."""
    connections.close_all()
    progress(f"--rollback: restoring the pre-upgrade backup #{backup_id}")
    try:
        restored = restore_run(str(backup_id), migrate=False, progress=progress)
    except BackupError as exc:
        return f"--rollback failed ({exc}).\n" + way_back_text(backup_id=backup_id, previous_image=previous_image)
    image = previous_image or "the image this installation ran before the upgrade"
    return (
        f"Rolled back: the database is the pre-upgrade backup #{backup_id} again (the failed one is kept as "
        f"{restored['previous']}). Now go back to the previous image ({image}) and start it; this release's "
        "migrations stay unapplied."
    )


def upgrade_backup_remove(*, backup_id: int) -> Backup:
    """Delete the copies of a pre-upgrade backup, the one way such a backup goes (retention never takes it)."""
    backup = Backup.objects.filter(pk=backup_id).first()
    if backup is None or backup.trigger != Backup.Trigger.PRE_UPGRADE:
        raise InvalidInput({"backup_id": [f"There is no pre-upgrade backup #{backup_id}."]})
    now = timezone.now()
    if backup.has_local_copy:
        local_storage().delete(backup.local_path)
        audited_update(Backup.objects.filter(pk=backup.pk), local_deleted_at=now)
    s3 = s3_storage()
    if backup.has_s3_copy and s3 is not None:
        s3.delete(backup.s3_key)
        audited_update(Backup.objects.filter(pk=backup.pk), s3_deleted_at=now)
    backup.refresh_from_db()
    logger.warning("pre-upgrade backup %s removed by an operator", backup.pk)
    return backup


def pre_upgrade_backups() -> list[dict[str, Any]]:
    """The pre-upgrade backups that still have a copy, newest first."""
    rows = Backup.objects.filter(trigger=Backup.Trigger.PRE_UPGRADE)
    return [
        {"id": b.pk, "status": b.status, "created_at": b.created_at, "local": b.has_local_copy, "s3": b.has_s3_copy}
        for b in rows
        if b.has_local_copy or b.has_s3_copy
    ]
