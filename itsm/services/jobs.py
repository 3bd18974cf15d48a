"""Scheduled jobs run at most once per slot, and every run is recorded (the dead-man switch reads these rows).

A run asked for by an admin ("run now") is a queued row first: the message carries its id, the worker claims it
with a compare-and-set, and the job's own task then records into that row instead of a slot of its schedule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import current_app
from django.db import IntegrityError, connections, transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from itsm import metrics
from itsm.models import JobRun
from itsm.services.job_schedule import job_get
from itsm.services.publisher import publish_soon

logger = logging.getLogger(__name__)

RUN_NOW_TASK = "itsm.tasks.jobs.run_job_now"
Status = JobRun.Status

# (job name, run id) of the manual run the current task executes, set by `manual_run`.
_MANUAL_RUN: ContextVar[tuple[str, int] | None] = ContextVar("itsm_manual_job_run", default=None)


def slot_of(now: datetime, period: timedelta) -> datetime:
    """The start of the scheduled slot `now` falls in (slots are aligned to the epoch, in UTC)."""
    seconds = period.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, tz=UTC)


def job_run_scheduled(*, job: str, work: Callable[[], dict[str, Any]], now: datetime | None = None) -> JobRun | None:
    """`job_run_once` for a job of the Beat schedule, in the slot its schedule entry gives (the one place a job's
    period is written)."""
    scheduled = job_get(job)
    if scheduled is None:
        raise LookupError(f"{job} is not in the Beat schedule (itsm_project/celery.py)")
    return job_run_once(job=job, period=scheduled.slot, work=work, now=now)


def job_run_once(
    *, job: str, period: timedelta, work: Callable[[], dict[str, Any]], now: datetime | None = None
) -> JobRun | None:
    """Run `work` unless this job already ran (or runs) for the current slot. Returns the run, or None if skipped.

    Inside `manual_run` for this job, the work is recorded in that manual run instead, whatever the slot."""
    manual = _MANUAL_RUN.get()
    if manual is not None and manual[0] == job:
        run = JobRun.objects.get(pk=manual[1])
    else:
        now = now or timezone.now()
        slot = slot_of(now, period)
        try:
            with transaction.atomic():
                run = JobRun.objects.create(job=job, slot=slot, started_at=now)
        except IntegrityError:
            logger.info("job %s already ran for slot %s", job, slot.isoformat())
            metrics.JOB_RUNS.labels(job=job, outcome="skipped").inc()
            if JobRun.objects.filter(job=job, slot=slot, status=Status.SUCCEEDED).exists():
                _record_success(job, period)
            return None
    started = time.perf_counter()
    try:
        detail = work()
    except Exception as exc:
        _finish(run, Status.FAILED, time.perf_counter() - started, {"error": f"{type(exc).__name__}: {exc}"[:2000]})
        metrics.JOB_RUNS.labels(job=job, outcome="failed").inc()
        raise
    finally:
        metrics.JOB_DURATION.labels(job=job).observe(time.perf_counter() - started)
    _finish(run, Status.SUCCEEDED, time.perf_counter() - started, detail)
    metrics.JOB_RUNS.labels(job=job, outcome="succeeded").inc()
    _record_success(job, period)
    run.refresh_from_db()
    return run


def _finish(run: JobRun, status: str, seconds: float, detail: dict[str, Any]) -> None:
    JobRun.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now(), duration_seconds=round(seconds, 3), detail=detail
    )


def _record_success(job: str, period: timedelta) -> None:
    """The BeatJobMissed alert compares these two (monitoring/rules/itsm.yml)."""
    metrics.JOB_LAST_SUCCESS.labels(job=job).set(time.time())
    metrics.JOB_PERIOD.labels(job=job).set(period.total_seconds())


# --- run now --------------------------------------------------------------------------------------------------
def job_run_request(*, job: str, queue: str, requested_by: Any = None) -> JobRun:
    """A queued manual run of `job`; its message goes to the job's queue after commit. Nothing here waits on the
    broker for long: if it refuses the message, the run is marked failed and says why."""
    now = timezone.now()
    run = JobRun.objects.create(
        job=job,
        slot=now,
        started_at=now,
        status=Status.QUEUED,
        trigger=JobRun.Trigger.MANUAL,
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
    )
    transaction.on_commit(lambda: _send(run.pk, queue))
    return run


def _send(run_id: int, queue: str) -> None:
    """Queue the run without holding up the request on a slow or frozen broker (the publisher's thread)."""

    def send() -> None:
        try:
            current_app.send_task(RUN_NOW_TASK, args=[run_id], queue=queue, retry=False)
        except Exception as exc:  # the broker is down or frozen: say so on the run rather than leave it queued
            logger.exception("could not queue the manual run %s", run_id)
            try:
                job_run_abandon(run_id=run_id, error=f"Could not queue the run: {type(exc).__name__}: {exc}"[:2000])
            finally:
                connections.close_all()  # this thread's own connection; it outlives any request

    publish_soon(send, f"the manual run {run_id}")


def job_run_claim(*, run_id: int) -> JobRun | None:
    """Queued → running, once: a duplicated message finds the run already claimed and gets None."""
    claimed = JobRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    return JobRun.objects.get(pk=run_id) if claimed else None


def job_run_abandon(*, run_id: int, error: str) -> bool:
    """Mark a queued or running run failed (it never ran, or its task did not record it); False if it finished."""
    return bool(
        JobRun.objects.filter(pk=run_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
            status=Status.FAILED, finished_at=timezone.now(), detail={"error": error}
        )
    )


def job_runs_expire_queued(*, now: datetime, older_than: timedelta) -> int:
    """Manual runs still queued long after they were asked for: their message was lost (say, a flushed broker)."""
    return JobRun.objects.filter(status=Status.QUEUED, slot__lt=now - older_than).update(
        status=Status.FAILED, finished_at=now, detail={"error": "No worker picked up this run."}
    )


@contextmanager
def manual_run(run: JobRun) -> Iterator[None]:
    """While inside, `job_run_once` for this run's job records into `run` instead of a scheduled slot."""
    token = _MANUAL_RUN.set((run.job, run.pk))
    try:
        yield
    finally:
        _MANUAL_RUN.reset(token)


# --- reads ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatestRuns:
    last_run: JobRun | None
    last_success: JobRun | None


def job_latest_runs(names: list[str]) -> dict[str, LatestRuns]:
    """The newest run and the newest successful run of each job, in one query (an index lookup per job)."""
    if not names:
        return {}
    wanted = Q()
    for name in names:
        newest = JobRun.objects.filter(job=name).order_by("-id").values("id")[:1]
        newest_ok = JobRun.objects.filter(job=name, status=Status.SUCCEEDED).order_by("-id").values("id")[:1]
        wanted |= Q(pk=Subquery(newest)) | Q(pk=Subquery(newest_ok))
    runs: dict[str, list[JobRun]] = {}
    for run in JobRun.objects.filter(wanted).order_by("-id"):
        runs.setdefault(run.job, []).append(run)
    result = {}
    for name in names:
        found = runs.get(name, [])
        success = next((run for run in found if run.status == Status.SUCCEEDED), None)
        result[name] = LatestRuns(last_run=found[0] if found else None, last_success=success)
    return result
