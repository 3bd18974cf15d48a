from typing import Any

from celery import shared_task

from itsm.backup.pgbackrest import PitrError
from itsm.models import RecoveryDrill
from itsm.services import pitr
from itsm.services.jobs import job_run_scheduled

NOT_CONFIGURED = {"skipped": "point-in-time recovery is not configured (BACKUP_PITR_STANZA)"}


@shared_task(name="itsm.tasks.pitr.pitr_backup")
def pitr_backup(kind: str) -> dict[str, Any] | None:
    """Beat: a pgBackRest full (weekly) or differential (daily) backup; skipped while PITR is not configured."""
    run = job_run_scheduled(
        job=f"pitr_backup_{kind}",
        work=lambda: pitr.pitr_backup(kind=kind) if pitr.pitr_enabled() else NOT_CONFIGURED,
    )
    return run.detail if run else None


def _scheduled_drill() -> dict[str, Any]:
    if not pitr.pitr_enabled():
        return NOT_CONFIGURED
    drill = pitr.pitr_drill(trigger=RecoveryDrill.Trigger.SCHEDULED)
    if drill.status != RecoveryDrill.Status.SUCCEEDED:
        raise PitrError(f"PITR drill #{drill.pk} failed: {drill.error}")  # the job run is recorded as failed
    return {"drill": drill.pk, "rpo_seconds": drill.rpo_seconds, "rto_seconds": drill.rto_seconds}


@shared_task(name="itsm.tasks.pitr.pitr_drill")
def pitr_drill() -> dict[str, Any] | None:
    """Monthly: restore to a moment into a throw-away cluster and record the RPO and RTO."""
    try:
        run = job_run_scheduled(job="pitr_drill", work=_scheduled_drill)
    except PitrError as exc:
        return {"error": str(exc)}
    return run.detail if run else None
