"""Point-in-time recovery with pgBackRest: the weekly full and daily differential backups, the check shown on
/health/, restores to a moment into a new data directory, and the monthly drill that proves them
(docs/runbooks/backup-restore.md#point-in-time-recovery).

A restore never touches the live cluster: it fills a new data directory, starts it on a free loopback port until
it has replayed WAL to the target and promoted, checks it (connects, counts every table's rows), stops it and
leaves it ready to be swapped in as the runbook says."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from itsm import metrics
from itsm.audit import audited_update
from itsm.backup.base import Progress, no_progress
from itsm.backup.cluster import RestoredCluster
from itsm.backup.configured import drill_lock, pgbackrest, pitr_database, restored_cluster
from itsm.backup.pgbackrest import BackupSet, PgBackRest, PitrError, archive_status, chown_for
from itsm.models import RecoveryDrill

logger = logging.getLogger(__name__)

HEALTH_CACHE_KEY = "itsm:pitr-check"
# `pgbackrest check` switches a WAL segment to prove archiving works: /health/ runs it at most once a minute.
HEALTH_CACHE_SECONDS = 60
HEALTH_CHECK_TIMEOUT_SECONDS = 30
# The drill's two rows, in a table of its own in the archived database (created on the first drill).
MARKER_TABLE = "itsm_pitr_marker"
# A drill recorded as running whose lock is free this long after it started: the process running it died.
REAP_AFTER = timedelta(minutes=1)
INTERRUPTED = "interrupted: the process running the drill stopped before it finished"
# Lines pgBackRest's restore wrote into postgresql.auto.conf that must not follow the cluster into service.
RECOVERY_ONLY_SETTINGS = ("archive_mode", "recovery_target")


def pitr_enabled() -> bool:
    """Whether this deployment archives WAL with pgBackRest (BACKUP_PITR_STANZA is set)."""
    return bool(settings.BACKUP_PITR_STANZA)


def pitr_backup(*, kind: str, progress: Progress = no_progress) -> dict[str, Any]:
    """A pgBackRest backup (full weekly, diff daily); pgBackRest expires what retention no longer keeps."""
    tool = pgbackrest()
    progress(f"pgbackrest {kind} backup of stanza {tool.stanza}")
    try:
        backup = tool.backup(kind)
    except PitrError:
        metrics.PITR_BACKUPS.labels(type=kind, outcome="failed").inc()
        raise
    metrics.PITR_BACKUPS.labels(type=kind, outcome="succeeded").inc()
    logger.info("pgbackrest %s backup %s: %s bytes in the repository", kind, backup.label, backup.size)
    return {
        "label": backup.label,
        "type": backup.type,
        "size_bytes": backup.size,
        "stopped_at": _iso(backup.stopped_at),
    }


def pitr_archiving_check() -> None:
    """`pgbackrest check`, raising PitrError: the hourly job's check once WAL archiving replaces the hourly dump."""
    pgbackrest().check(timeout=HEALTH_CHECK_TIMEOUT_SECONDS)


def pitr_health() -> dict[str, Any] | None:
    """`pgbackrest check` for /health/'s detail (admins): None when PITR is not configured; cached a minute."""
    if not pitr_enabled():
        return None
    found = cache.get(HEALTH_CACHE_KEY)
    if found is not None:
        return dict(found)
    started = time.perf_counter()
    try:
        pitr_archiving_check()
        result: dict[str, Any] = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    except PitrError as exc:
        result = {"status": "down", "error": str(exc)[:300]}
    result["checked_at"] = timezone.now().isoformat()
    cache.set(HEALTH_CACHE_KEY, result, HEALTH_CACHE_SECONDS)
    return result


def wal_archive_refresh() -> float | None:
    """Seconds since the archived cluster last archived a WAL segment, into its gauge (None: PITR is off, or
    nothing was archived yet)."""
    if not pitr_enabled():
        return None
    age = archive_status(pitr_database()).age_seconds
    if age is not None:
        metrics.WAL_ARCHIVE_AGE.set(age)
    return age


# --- restore to a moment ----------------------------------------------------------------------------------------
def pitr_restore_to_time(*, target: datetime, progress: Progress = no_progress) -> dict[str, Any]:
    """Restore the repository into a new data directory as of `target`, replay, check and stop it. Returns where
    it is and what it holds; the swap into service is the runbook's (the command prints it)."""
    tool = pgbackrest()
    backup = _backup_for(tool, target)
    data = _new_data_dir(f"restore_{timezone.now():%Y%m%d_%H%M%S}")
    started = time.monotonic()
    progress(f"restoring to {target.isoformat()} from backup {backup.label} into {data}")
    cluster = restored_cluster(data, data.parent / f"{data.name}.log")
    try:
        counts = _restore_and_check(tool, cluster, target, progress)
    except PitrError:
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)  # a partial restore is of no use; its log stays beside it
        raise
    cluster.stop()
    _ready_for_service(data)
    seconds = time.monotonic() - started
    progress(f"stopped the restored cluster; {data} is ready to be swapped in")
    return {
        "data_dir": str(data),
        "target": target.isoformat(),
        "backup_label": backup.label,
        "tables": len(counts),
        "rows": sum(counts.values()),
        "seconds": round(seconds, 1),
    }


def _backup_for(tool: PgBackRest, target: datetime) -> BackupSet:
    """The backup a restore to `target` starts from (the newest that ended before it), or why there is none."""
    if target > timezone.now():
        raise PitrError(f"{target.isoformat()} is in the future")
    sets = tool.backup_sets()
    if not sets:
        raise PitrError("the pgBackRest repository has no backup yet: run `manage.py pitr_backup --type full`")
    # pgBackRest records whole seconds and wants the backup to have stopped before the target's second.
    usable = [b for b in sets if b.stopped_at + timedelta(seconds=1) <= target]
    if not usable:
        raise PitrError(
            f"{target.isoformat()} is before the oldest backup, which ended at {sets[0].stopped_at.isoformat()}: "
            f"the earliest moment that can be restored is {(sets[0].stopped_at + timedelta(seconds=1)).isoformat()}"
        )
    return usable[-1]


def _new_data_dir(name: str) -> Path:
    root = Path(settings.BACKUP_PITR_RESTORE_DIR)
    data = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        data.mkdir(mode=0o700)
        chown_for(data, settings.BACKUP_PITR_OS_USER)
    except OSError as exc:
        raise PitrError(f"cannot create the data directory {data} (BACKUP_PITR_RESTORE_DIR): {exc}") from exc
    return data


def _restore_and_check(
    tool: PgBackRest, cluster: RestoredCluster, target: datetime, progress: Progress
) -> dict[str, int]:
    tool.restore(target=target, pg_path=cluster.data)
    progress("files restored; starting it on loopback to replay WAL to the target")
    cluster.start()
    database = pitr_database()
    cluster.wait_usable(database, timeout=settings.BACKUP_PITR_RESTORE_TIMEOUT_SECONDS)
    progress(f"replayed and promoted (port {cluster.port}); counting rows")
    try:
        counts = cluster.counts(database)
    except psycopg2.Error as exc:
        raise PitrError(f"the restored cluster cannot be read: {str(exc).strip()}") from exc
    progress(f"the restored database {database['dbname']} answers: {len(counts)} tables, {sum(counts.values())} rows")
    return counts


def _ready_for_service(data: Path) -> None:
    """Drop the restore's `archive_mode = 'off'` and recovery target from postgresql.auto.conf, so the swapped-in
    cluster archives again under its usual configuration."""
    auto = data / "postgresql.auto.conf"
    if auto.exists():
        kept = [line for line in auto.read_text().splitlines() if not line.startswith(RECOVERY_ONLY_SETTINGS)]
        auto.write_text("\n".join(kept) + "\n")


# --- the drill ----------------------------------------------------------------------------------------------------
def pitr_drill(*, trigger: str = RecoveryDrill.Trigger.MANUAL, progress: Progress = no_progress) -> RecoveryDrill:
    """Write a row, note the moment, write another, wait for their WAL to be archived (RPO), restore to the moment
    into a throw-away cluster (RTO), and require the first row there and not the second. Always recorded."""
    tool = pgbackrest()
    pitr_drills_reap()
    drill = RecoveryDrill.objects.create(trigger=trigger, started_at=timezone.now())
    detail: dict[str, Any] = {}
    try:
        with drill_lock(drill.pk):
            _drill(drill, tool, detail, progress)
    except (PitrError, psycopg2.Error, OSError) as exc:  # a full disk or a bad directory fails the drill too
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        audited_update(
            RecoveryDrill.objects.filter(pk=drill.pk),
            status=RecoveryDrill.Status.FAILED,
            finished_at=timezone.now(),
            error=message[:2000],
            detail=detail,
        )
        metrics.PITR_DRILLS.labels(outcome="failed").inc()
        logger.error("PITR drill %s failed: %s", drill.pk, message)
    else:
        metrics.PITR_DRILLS.labels(outcome="succeeded").inc()
        metrics.PITR_DRILL_LAST_SUCCESS.set(time.time())
    drill.refresh_from_db()
    return drill


def pitr_drills_reap(*, now: datetime | None = None) -> list[int]:
    """Record as failed the drills still marked running whose process died (their lock is free), stopping and
    removing the throw-away cluster each left behind and its marker rows. Run before each drill and by the metrics
    job every minute, so a drill killed with its worker does not stay `running`."""
    if not pitr_enabled():
        return []
    now = now or timezone.now()
    reaped = []
    running = RecoveryDrill.objects.filter(status=RecoveryDrill.Status.RUNNING, started_at__lt=now - REAP_AFTER)
    for drill_id in running.values_list("pk", flat=True):
        with drill_lock(drill_id) as free:
            if not free:
                continue  # its process holds the lock: still running
            left = _remove_drill_clusters(drill_id)
            with contextlib.suppress(psycopg2.Error):
                _delete_markers(pitr_database(), (f"drill-{drill_id}-%",))
            updated = audited_update(
                RecoveryDrill.objects.filter(pk=drill_id, status=RecoveryDrill.Status.RUNNING),
                status=RecoveryDrill.Status.FAILED,
                finished_at=now,
                error=INTERRUPTED,
                detail={"removed": left},
            )
        if updated:
            reaped.append(drill_id)
            metrics.PITR_DRILLS.labels(outcome="failed").inc()
            logger.error("PITR drill %s: %s; removed %s", drill_id, INTERRUPTED, left or "nothing")
    return reaped


def _remove_drill_clusters(drill_id: int) -> list[str]:
    """Stop the postmaster an interrupted drill left on its data directory (by the PID in postmaster.pid, after
    checking it is that directory's) and remove the directory and its log."""
    removed = []
    for data in sorted(Path(settings.BACKUP_PITR_RESTORE_DIR).glob(f"drill_{drill_id}_*")):
        if not data.is_dir():
            continue
        _stop_postmaster(data)
        shutil.rmtree(data, ignore_errors=True)
        (data.parent / f"{data.name}.log").unlink(missing_ok=True)
        removed.append(str(data))
    return removed


def _stop_postmaster(data: Path, timeout: float = 30) -> None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        working_dir = Path(f"/proc/{pid}/cwd").readlink()  # a postmaster works in its data directory
    except (OSError, ValueError, IndexError):
        return  # no postmaster.pid, or its process is gone
    if working_dir != data.resolve():
        return  # the PID was reused by another process
    os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the throw-away cluster's data is about to be removed
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _drill(drill: RecoveryDrill, tool: PgBackRest, detail: dict[str, Any], progress: Progress) -> None:
    live = pitr_database()
    before, after = f"drill-{drill.pk}-before-{secrets.token_hex(4)}", f"drill-{drill.pk}-after-{secrets.token_hex(4)}"
    target, segment, written_at = _write_markers(live, before, after)
    detail.update(target=target.isoformat(), segment=segment)
    audited_update(RecoveryDrill.objects.filter(pk=drill.pk), target_time=target)
    progress(f"wrote a row before {target.isoformat()} and one after; waiting for WAL segment {segment} to be archived")
    rpo = _wait_archived(live, segment, written_at)
    progress(f"archived {rpo:.1f} s after the last write (RPO)")
    backup = _backup_for(tool, target)
    data = _new_data_dir(f"drill_{drill.pk}_{timezone.now():%Y%m%d_%H%M%S}")
    cluster = restored_cluster(data, data.parent / f"{data.name}.log")
    started = time.monotonic()
    try:
        progress(f"restoring backup {backup.label} to the target into the throw-away cluster {data}")
        counts = _restore_and_check(tool, cluster, target, progress)
        found = _markers_in(cluster.params(live), (before, after))
        rto = time.monotonic() - started
    except PitrError:
        detail["restored_cluster_log"] = cluster.last_log_error()
        raise
    finally:
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)
        (data.parent / f"{data.name}.log").unlink(missing_ok=True)
    if before not in found:
        raise PitrError(f"the row written before {target.isoformat()} is missing from the restored cluster")
    if after in found:
        raise PitrError(f"the row written after {target.isoformat()} is in the restored cluster: it replayed too far")
    _delete_markers(live, (before, after))
    audited_update(
        RecoveryDrill.objects.filter(pk=drill.pk),
        status=RecoveryDrill.Status.SUCCEEDED,
        finished_at=timezone.now(),
        rpo_seconds=round(rpo, 3),
        rto_seconds=round(rto, 3),
        backup_label=backup.label,
        restored_tables=len(counts),
        restored_rows=sum(counts.values()),
        detail=detail,
    )
    metrics.PITR_DRILL_RPO.set(rpo)
    metrics.PITR_DRILL_RTO.set(rto)
    logger.info("PITR drill %s: RPO %.1f s, RTO %.1f s", drill.pk, rpo, rto)


def _write_markers(live: dict[str, Any], before: str, after: str) -> tuple[datetime, str, datetime]:
    """Commit `before`, take the server's clock as the target, commit `after`. Returns the target, the WAL segment
    holding `after` and when `after` was committed (the server's clock, as pg_stat_archiver's)."""
    connection = psycopg2.connect(**live)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
                "(token text PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            cursor.execute(f"INSERT INTO {MARKER_TABLE} (token) VALUES (%s)", [before])  # noqa: S608
            cursor.execute("SELECT clock_timestamp()")
            target = _one(cursor)
            cursor.execute(f"INSERT INTO {MARKER_TABLE} (token) VALUES (%s)", [after])  # noqa: S608
            cursor.execute("SELECT pg_walfile_name(pg_current_wal_lsn()), clock_timestamp()")
            row = cursor.fetchone()
    finally:
        connection.close()
    assert row is not None
    return target, row[0], row[1]


def _one(cursor: Any) -> Any:
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def _wait_archived(live: dict[str, Any], segment: str, written_at: datetime) -> float:
    """Seconds from `written_at` until `segment` was archived, by the server's clock. No forced WAL switch: the
    wait is what archive_timeout makes it, which is the point."""
    deadline = time.monotonic() + settings.BACKUP_PITR_DRILL_WAIT_SECONDS
    while True:
        status = archive_status(live)
        if status.covers(segment) and status.last_archived_at is not None:
            return max(0.0, (status.last_archived_at - written_at).total_seconds())
        if time.monotonic() > deadline:
            failed = (
                f"; last failure {status.last_failed_wal} at {_iso(status.last_failed_at)}"
                if status.last_failed_wal
                else ""
            )
            raise PitrError(
                f"WAL segment {segment} was not archived within {settings.BACKUP_PITR_DRILL_WAIT_SECONDS} s "
                f"(last archived {status.last_archived_wal or 'none'}{failed}): the target cannot be reached"
            )
        time.sleep(0.5)


def _markers_in(params: dict[str, Any], tokens: tuple[str, ...]) -> set[str]:
    connection = psycopg2.connect(**params)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT token FROM {MARKER_TABLE} WHERE token = ANY(%s)", [list(tokens)])  # noqa: S608
            return {row[0] for row in cursor.fetchall()}
    except psycopg2.errors.UndefinedTable:
        return set()
    finally:
        connection.close()


def _delete_markers(live: dict[str, Any], patterns: tuple[str, ...]) -> None:
    """Delete the marker rows whose token is LIKE one of `patterns` (a drill's own tokens have no % or _)."""
    connection = psycopg2.connect(**live)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {MARKER_TABLE} WHERE token LIKE ANY(%s)", [list(patterns)])  # noqa: S608
    except psycopg2.errors.UndefinedTable:
        pass
    finally:
        connection.close()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
