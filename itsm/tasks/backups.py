from typing import Any

from celery import shared_task
from django.conf import settings

from itsm.backup.base import StorageUnavailable
from itsm.exceptions import NotReady
from itsm.models import Backup
from itsm.services import backups, restore
from itsm.services.jobs import job_run_scheduled


@shared_task(name="itsm.tasks.backups.scheduled_backup")
def scheduled_backup(kind: str, tier: str) -> dict[str, Any] | None:
    """Beat: queue the backup of this kind and tier for the current slot (at most one per slot)."""
    run = job_run_scheduled(job=f"backup_{kind}_{tier}", work=lambda: backups.backup_schedule(kind=kind, tier=tier))
    return run.detail if run else None


@shared_task(bind=True, name="itsm.tasks.backups.run_backup")
def run_backup(self: Any, backup_id: int) -> str | None:
    """Dump, store, verify, copy to S3 and apply retention; only an unreachable S3 is retried, with backoff."""
    final = self.request.retries >= settings.BACKUP_UPLOAD_RETRIES
    try:
        backup = backups.backup_run(backup_id=backup_id, final_attempt=final)
    except StorageUnavailable as exc:
        delay = settings.BACKUP_UPLOAD_RETRY_DELAY_SECONDS * 2**self.request.retries
        raise self.retry(exc=exc, countdown=delay, max_retries=settings.BACKUP_UPLOAD_RETRIES) from exc
    return backup.status if backup else None


@shared_task(name="itsm.tasks.backups.verify_backup")
def verify_backup(backup_id: int) -> bool | None:
    """Verify a backup again (from the API or the admin)."""
    try:
        return backups.backup_verify(backup_id=backup_id).verified_ok
    except (Backup.DoesNotExist, NotReady):
        return None


@shared_task(name="itsm.tasks.backups.check_backup_age")
def check_backup_age() -> dict[str, Any] | None:
    """Daily: fail (and count) when the newest verified backup of a scheduled kind and tier is too old."""
    try:
        run = job_run_scheduled(job="backup_age_check", work=backups.backup_check_age)
    except backups.BackupsTooOld as exc:
        return {"problems": [problem.message for problem in exc.problems]}
    return run.detail if run else None


@shared_task(name="itsm.tasks.backups.restore_drill")
def restore_drill() -> dict[str, Any] | None:
    """Monthly: restore the newest verified backup from S3 into a scratch database; record RTO and RPO."""
    run = job_run_scheduled(job="backup_restore_drill", work=restore.backup_restore_drill)
    return run.detail if run else None
