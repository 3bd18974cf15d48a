"""Backups as records: queue one, run it (dump, store, verify, copy to S3, apply retention), verify one again, check
that recent verified backups exist, and drill a restore. A backup counts only once a restore of it was checked.

Lifecycle: pending → running → succeeded | failed. `backup_run` is the only code that moves a backup along it; it
holds a run lock that dies with its process, so a duplicate message skips a running backup while a backup whose
worker was killed is taken over and finished, and every step it has already done is not done again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Min, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from itsm import metrics
from itsm.audit import audited_update
from itsm.backup.base import (
    BackupError,
    Progress,
    StorageUnavailable,
    backup_file_name,
    no_progress,
    removed_on_error,
)
from itsm.backup.configured import (
    database_is_postgres,
    dumper_for,
    encryption_key,
    local_storage,
    postgres_dumper,
    run_lock,
    s3_storage,
    storage_class_for,
)
from itsm.backup.encryption import SUFFIX, encrypt_file, recipient_of
from itsm.backup.local import PARTIAL
from itsm.backup.retention import OFFSITE, Copy, Deletion, retention_plan
from itsm.exceptions import InvalidInput, NotReady
from itsm.models import Backup, Incident, JobRun
from itsm.services.incidents import incident_open_for_rule
from itsm.services.pitr import pitr_archiving_check, pitr_enabled
from itsm.services.publisher import publish_soon
from itsm.services.restore import verify_archive

logger = logging.getLogger(__name__)

RUN_TASK = "itsm.tasks.backups.run_backup"
VERIFY_TASK = "itsm.tasks.backups.verify_backup"

# What the schedule in itsm_project/celery.py promises: the newest verified backup of each scheduled kind and
# tier is never older than its period plus a margin for a slow or retried run.
MAX_AGE = {
    (Backup.Kind.DATABASE, Backup.Tier.HOURLY): timedelta(hours=2),
    (Backup.Kind.DATABASE, Backup.Tier.DAILY): timedelta(hours=26),
    (Backup.Kind.DATABASE, Backup.Tier.WEEKLY): timedelta(days=8),
    (Backup.Kind.DATABASE, Backup.Tier.MONTHLY): timedelta(days=32),
    (Backup.Kind.REDIS, Backup.Tier.DAILY): timedelta(hours=26),
    (Backup.Kind.MEDIA, Backup.Tier.DAILY): timedelta(hours=26),
}

# Pending or running records whose messages were lost are queued again by the hourly job; after a day, given up.
RESUME_AFTER = timedelta(minutes=15)
ABANDON_AFTER = timedelta(days=1)


def wants_offsite(backup: Backup) -> bool:
    """The manual keeps hourly backups on local disk only; every other tier also goes to S3 when configured."""
    return bool(settings.BACKUP_S3_BUCKET) and backup.tier in OFFSITE


# --- queue -------------------------------------------------------------------------------------------------------
def backup_create(
    *,
    kind: str,
    tier: str = Backup.Tier.DAILY,
    trigger: str = Backup.Trigger.MANUAL,
    requested_by: Any = None,
    enqueue: bool = True,
) -> Backup:
    """A pending backup record; with `enqueue`, its run is queued on the backups queue after commit."""
    errors: dict[str, list[str]] = {}
    if kind not in Backup.Kind.values:
        errors["kind"] = [f"Unknown kind {kind!r}: choose database, redis or media."]
    elif kind == Backup.Kind.REDIS and not settings.BACKUP_REDIS_URL:
        errors["kind"] = ["No Redis is configured (REDIS_URL or BACKUP_REDIS_URL), so there is nothing to back up."]
    if tier not in Backup.Tier.values:
        errors["tier"] = [f"Unknown tier {tier!r}: choose hourly, daily, weekly or monthly."]
    if errors:
        raise InvalidInput(errors)
    backup = Backup.objects.create(
        kind=kind,
        tier=tier,
        trigger=trigger,
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
        created_at=timezone.now(),
    )
    if enqueue:
        transaction.on_commit(lambda: _send(RUN_TASK, backup.pk))
    return backup


def _send(task: str, backup_id: int) -> None:
    """Queue `task` for the backup without holding up the request on a slow or frozen broker."""

    def send() -> None:
        try:
            current_app.send_task(task, args=[backup_id], retry=False)
        except Exception:  # the broker is down: the record stays pending and the hourly job queues it again
            logger.exception("could not queue %s for backup %s; it will be queued again later", task, backup_id)

    publish_soon(send, f"{task} for backup {backup_id}")


def backup_verify_queue(*, backup_id: int) -> Backup:
    """Check that the backup can be verified and queue its verification."""
    backup = Backup.objects.get(pk=backup_id)
    _check_verifiable(backup)
    transaction.on_commit(lambda: _send(VERIFY_TASK, backup.pk))
    return backup


def backup_schedule(*, kind: str, tier: str) -> dict[str, Any]:
    """The work of one scheduled slot: a new pending backup, plus records whose messages were lost, queued."""
    if kind == Backup.Kind.REDIS and not settings.BACKUP_REDIS_URL:
        return {"skipped": "no Redis is configured"}
    if (kind, tier) == (Backup.Kind.DATABASE, Backup.Tier.HOURLY) and pitr_enabled():
        # WAL archiving covers the hour (RPO of archive_timeout, 30 s): the hourly dump and its full restore, which
        # grow with the database, become `pgbackrest check`, which proves a WAL segment reaches the repository now.
        pitr_archiving_check()
        return {"pitr_check": "ok", "requeued": backup_resume_stale()}
    backup = backup_create(kind=kind, tier=tier, trigger=Backup.Trigger.SCHEDULED)
    return {"backup_id": backup.pk, "requeued": backup_resume_stale(exclude=backup.pk)}


def backup_resume_stale(*, now: datetime | None = None, exclude: int | None = None) -> list[int]:
    """Queue again the backups that have waited or run for long (a lost message, a worker gone with its
    queue); give up on those older than a day."""
    now = now or timezone.now()
    stale = Backup.objects.filter(status__in=[Backup.Status.PENDING, Backup.Status.RUNNING])
    if exclude is not None:
        stale = stale.exclude(pk=exclude)
    for backup in stale.filter(created_at__lt=now - ABANDON_AFTER):
        _fail(backup, "internal", "abandoned: not finished within a day of being queued")
    ids = list(stale.filter(created_at__lt=now - RESUME_AFTER).values_list("pk", flat=True))
    for backup_id in ids:
        _send(RUN_TASK, backup_id)
    return ids


# --- run ---------------------------------------------------------------------------------------------------------
def backup_run(*, backup_id: int, final_attempt: bool = True, progress: Progress = no_progress) -> Backup | None:
    """Take a backup to succeeded or failed. Returns the record, or None when another process is running it.

    Raises StorageUnavailable when the S3 copy failed and `final_attempt` is False (the caller retries later;
    the local copy is kept and the next attempt only uploads)."""
    with run_lock(backup_id) as held:
        if not held:
            logger.info("backup %s is being run by another process; nothing to do", backup_id)
            return None
        backup = Backup.objects.filter(pk=backup_id).first()
        if backup is None or backup.status in (Backup.Status.SUCCEEDED, Backup.Status.FAILED):
            return backup
        if backup.status == Backup.Status.RUNNING:
            _clean_after_crash(backup)
        audited_update(
            Backup.objects.filter(pk=backup_id),
            status=Backup.Status.RUNNING,
            started_at=Coalesce(F("started_at"), Value(timezone.now(), output_field=DateTimeField())),
            attempts=F("attempts") + 1,
        )
        backup.refresh_from_db()
        if backup.attempts > 1:
            logger.warning("backup %s: attempt %s (the previous one was interrupted)", backup_id, backup.attempts)
        outcome = _run_steps(backup, final_attempt=final_attempt, progress=progress)
    if outcome.status == Backup.Status.SUCCEEDED:
        try:
            backup_apply_retention(kind=outcome.kind)
        except Exception:  # retention must never turn a good backup into a failed one
            logger.exception("retention after backup %s failed", outcome.pk)
            metrics.BACKUP_FAILURES.labels(kind=outcome.kind, tier=outcome.tier, stage="retention").inc()
    return outcome


def _run_steps(backup: Backup, *, final_attempt: bool, progress: Progress) -> Backup:
    stage = "dump"
    try:
        if not backup.local_path:
            _dump(backup, progress)
        stage = "verify"
        if backup.verified_ok is None:
            verify_archive(backup, source="local", progress=progress)
        if backup.verified_ok is False:
            return _fail(backup, stage, backup.verification.get("local", {}).get("error", "verification failed"))
        stage = "upload"
        if wants_offsite(backup) and not backup.s3_key:
            _upload(backup, progress)
    except StorageUnavailable as exc:
        if final_attempt:
            return _fail(backup, stage, f"{exc} (attempt {backup.attempts}; the local copy is kept)")
        audited_update(Backup.objects.filter(pk=backup.pk), error=f"attempt {backup.attempts}: {exc}"[:4000])
        logger.warning("backup %s: %s; will retry", backup.pk, exc)
        raise
    except BackupError as exc:
        return _fail(backup, stage, str(exc))
    except Exception as exc:
        logger.exception("backup %s failed unexpectedly in %s", backup.pk, stage)
        return _fail(backup, stage, f"{type(exc).__name__}: {exc}")
    return _succeed(backup, progress)


def _clean_after_crash(backup: Backup) -> None:
    """A running record whose lock was free: its worker died. Remove what it left half done."""
    removed = local_storage().remove_partials(backup.pk)
    dropped: list[str] = []
    if backup.kind == Backup.Kind.DATABASE and database_is_postgres():
        try:
            dropped = postgres_dumper().drop_scratch_databases(str(backup.pk))
        except BackupError as exc:
            logger.error("backup %s: scratch databases of the interrupted attempt remain: %s", backup.pk, exc)
    logger.warning(
        "backup %s was interrupted (attempt %s); removed %s partial files and scratch databases %s",
        backup.pk,
        backup.attempts,
        len(removed),
        dropped,
    )


def _dump(backup: Backup, progress: Progress) -> None:
    dumper = dumper_for(backup.kind)
    assert backup.started_at is not None
    name = backup_file_name(
        started_at=backup.started_at,
        kind=backup.kind,
        tier=backup.tier,
        backup_id=backup.pk,
        extension=dumper.extension,
    )
    key = encryption_key()
    relative = f"{backup.kind}/{name}{SUFFIX if key is not None else ''}"
    storage = local_storage()
    progress(f"backup #{backup.pk}: {backup.kind} ({backup.tier}) → {storage.path(relative)}")
    started = time.perf_counter()
    with removed_on_error(storage.partial(relative)) as partial:
        if key is None:
            manifest = dumper.dump(partial, progress=progress)
        else:
            # The clear dump lives only in BACKUP_DIR/.tmp (removed after a crash with the other partial files).
            with removed_on_error(storage.work_dir() / f"{name}{PARTIAL}") as clear:
                manifest = dumper.dump(clear, progress=progress)
                progress(f"encrypting to {recipient_of(key)} (age)")
                encrypt_file(clear, partial, key=key)
                clear.unlink()
            manifest = {**manifest, "encrypted_to": recipient_of(key)}
        sha256, size = storage.commit(relative)
    audited_update(
        Backup.objects.filter(pk=backup.pk), local_path=relative, sha256=sha256, size_bytes=size, manifest=manifest
    )
    backup.refresh_from_db()
    progress(f"stored {size} bytes in {time.perf_counter() - started:.1f} s, sha256 {sha256}")


def _upload(backup: Backup, progress: Progress) -> None:
    s3 = s3_storage()
    assert s3 is not None
    key = s3.key_for(kind=backup.kind, tier=backup.tier, file_name=Path(backup.local_path).name)
    storage_class = storage_class_for(backup.tier)
    progress(f"uploading to s3://{s3.bucket}/{key} ({storage_class})")
    result = s3.upload(local_storage().path(backup.local_path), key, sha256=backup.sha256, storage_class=storage_class)
    verification = {**backup.verification, "upload": {**result, "at": timezone.now().isoformat()}}
    audited_update(
        Backup.objects.filter(pk=backup.pk), s3_key=key, s3_storage_class=storage_class, verification=verification
    )
    backup.refresh_from_db()
    progress(f"S3 copy checked ({result['checked_by']}): {result['size']} bytes")


def _succeed(backup: Backup, progress: Progress) -> Backup:
    now = timezone.now()
    audited_update(Backup.objects.filter(pk=backup.pk), status=Backup.Status.SUCCEEDED, finished_at=now, error="")
    backup.refresh_from_db()
    labels = {"kind": backup.kind, "tier": backup.tier}
    metrics.BACKUP_LAST_SUCCESS.labels(**labels).set(now.timestamp())
    metrics.BACKUP_SIZE.labels(**labels).set(backup.size_bytes or 0)
    if backup.started_at:
        metrics.BACKUP_DURATION.labels(**labels).observe((now - backup.started_at).total_seconds())
    logger.info("backup %s succeeded: %s, %s bytes", backup.pk, backup.local_path, backup.size_bytes)
    progress(f"backup #{backup.pk} succeeded")
    return backup


def _fail(backup: Backup, stage: str, error: str) -> Backup:
    audited_update(
        Backup.objects.filter(pk=backup.pk), status=Backup.Status.FAILED, finished_at=timezone.now(), error=error[:4000]
    )
    backup.refresh_from_db()
    metrics.BACKUP_FAILURES.labels(kind=backup.kind, tier=backup.tier, stage=stage).inc()
    logger.error("backup %s failed in %s: %s", backup.pk, stage, error)
    return backup


# --- verify ------------------------------------------------------------------------------------------------------
def _check_verifiable(backup: Backup) -> None:
    if not backup.sha256 or backup.status in (Backup.Status.PENDING, Backup.Status.RUNNING):
        raise NotReady(f"Backup #{backup.pk} is {backup.status} and has no finished archive to verify yet.")
    if not backup.has_local_copy and not backup.has_s3_copy:
        raise NotReady(f"Backup #{backup.pk} has no copy left on local disk or in S3.")


def backup_verify(*, backup_id: int, source: str = "auto", progress: Progress = no_progress) -> Backup:
    """Read the archive in full and restore it into a scratch database (or file); record whether everything
    matches the manifest. `source` is local, s3, or auto (local when that copy exists)."""
    backup = Backup.objects.get(pk=backup_id)
    _check_verifiable(backup)
    if source == "auto":
        source = "local" if backup.has_local_copy else "s3"
    return verify_archive(backup, source=source, progress=progress)


# --- retention ---------------------------------------------------------------------------------------------------
def backup_apply_retention(*, kind: str | None = None, now: datetime | None = None) -> list[Deletion]:
    """Delete the copies the manual's retention no longer keeps (see itsm.backup.retention); log each one."""
    now = now or timezone.now()
    rows = Backup.objects.filter(
        (Q(local_deleted_at__isnull=True) & ~Q(local_path="")) | (Q(s3_deleted_at__isnull=True) & ~Q(s3_key=""))
    )
    if kind is not None:
        rows = rows.filter(kind=kind)
    # A pre-upgrade backup is the way back from a failed release: kept until an operator removes it (upgrade.py).
    rows = rows.exclude(trigger=Backup.Trigger.PRE_UPGRADE)
    by_id = {b.pk: b for b in rows}
    copies = [
        Copy(
            id=b.pk,
            kind=b.kind,
            tier=b.tier,
            taken_at=b.started_at or b.created_at,
            verified=b.is_verified,
            local=b.has_local_copy,
            s3=b.has_s3_copy,
        )
        for b in by_id.values()
    ]
    s3 = s3_storage()
    plan = retention_plan(copies, now=now, offsite=s3 is not None)
    done: list[Deletion] = []
    for deletion in plan:
        backup = by_id[deletion.backup_id]
        try:
            if deletion.location == "local":
                local_storage().delete(backup.local_path)
                audited_update(Backup.objects.filter(pk=backup.pk), local_deleted_at=timezone.now())
            else:
                if s3 is None:
                    continue
                s3.delete(backup.s3_key)
                audited_update(Backup.objects.filter(pk=backup.pk), s3_deleted_at=timezone.now())
        except (OSError, BackupError, StorageUnavailable) as exc:
            logger.error("retention could not delete backup %s from %s: %s", backup.pk, deletion.location, exc)
            continue
        where = (
            backup.local_path if deletion.location == "local" else f"s3://{settings.BACKUP_S3_BUCKET}/{backup.s3_key}"
        )
        logger.info("retention deleted backup %s (%s): %s", backup.pk, where, deletion.reason)
        metrics.BACKUP_DELETIONS.labels(kind=backup.kind, location=deletion.location).inc()
        done.append(deletion)
    return done


# --- the daily age check -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgeProblem:
    kind: str
    tier: str
    newest_verified_at: datetime | None
    allowed: timedelta
    message: str


class BackupsTooOld(BackupError):
    """The daily check found kinds and tiers without a recent enough verified backup."""

    def __init__(self, problems: list[AgeProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(problem.message for problem in problems))


def backup_age_problems(*, now: datetime | None = None) -> list[AgeProblem]:
    """Each scheduled kind and tier whose newest verified backup is older than the schedule allows (or that has
    none although the platform has been running for longer than that). The daily check opens an incident
    for them (one, kept open while they last)."""
    now = now or timezone.now()
    running_since = JobRun.objects.aggregate(first=Min("started_at"))["first"] or now
    problems: list[AgeProblem] = []
    for (kind, tier), allowed in MAX_AGE.items():
        if kind == Backup.Kind.REDIS and not settings.BACKUP_REDIS_URL:
            continue
        if (kind, tier) == (Backup.Kind.DATABASE, Backup.Tier.HOURLY) and pitr_enabled():
            continue  # no hourly dumps with WAL archiving: WalArchiveStale watches the archive instead
        newest = (
            Backup.objects.filter(kind=kind, tier=tier, status=Backup.Status.SUCCEEDED, verified_ok=True)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        if newest is not None:
            age = now - newest
            metrics.BACKUP_NEWEST_VERIFIED_AGE.labels(kind=kind, tier=tier).set(age.total_seconds())
            if age > allowed:
                message = f"the newest verified {kind} {tier} backup is {_hours(age)} old (at most {_hours(allowed)})"
                problems.append(AgeProblem(kind, tier, newest, allowed, message))
        elif now - running_since > allowed:
            running = _hours(now - running_since)
            message = f"there is no verified {kind} {tier} backup, and scheduled jobs have run for {running}"
            problems.append(AgeProblem(kind, tier, None, allowed, message))
    return problems


def backup_check_age(*, now: datetime | None = None) -> dict[str, Any]:
    """The daily check: when a backup is too old, opens (or adds to) a high incident and raises BackupsTooOld, so
    the job run is recorded as failed."""
    problems = backup_age_problems(now=now)
    for problem in problems:
        metrics.BACKUP_AGE_CHECK_FAILURES.labels(kind=problem.kind, tier=problem.tier).inc()
        logger.error("backup check: %s", problem.message)
    if problems:
        incident_open_for_rule(
            key="backup-age",
            title="Backups are older than their schedule allows",
            summary="\n".join(problem.message for problem in problems),
            severity=Incident.Severity.HIGH,
        )
        raise BackupsTooOld(problems)
    return {"checked": [f"{kind}/{tier}" for kind, tier in MAX_AGE]}


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
