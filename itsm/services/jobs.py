"""Scheduled jobs run at most once per slot, and every run is recorded (the dead-man switch reads these rows)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from itsm import metrics
from itsm.models import JobRun

logger = logging.getLogger(__name__)


def slot_of(now: datetime, period: timedelta) -> datetime:
    """The start of the scheduled slot `now` falls in (slots are aligned to the epoch, in UTC)."""
    seconds = period.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, tz=UTC)


def job_run_once(
    *, job: str, period: timedelta, work: Callable[[], dict[str, Any]], now: datetime | None = None
) -> JobRun | None:
    """Run `work` unless this job already ran (or runs) for the current slot. Returns the run, or None if skipped."""
    now = now or timezone.now()
    slot = slot_of(now, period)
    try:
        with transaction.atomic():
            run = JobRun.objects.create(job=job, slot=slot, started_at=now)
    except IntegrityError:
        logger.info("job %s already ran for slot %s", job, slot.isoformat())
        metrics.JOB_RUNS.labels(job=job, outcome="skipped").inc()
        if JobRun.objects.filter(job=job, slot=slot, status=JobRun.Status.SUCCEEDED).exists():
            _record_success(job, period)
        return None
    started = time.perf_counter()
    try:
        detail = work()
    except Exception as exc:
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.FAILED,
            finished_at=timezone.now(),
            detail={"error": f"{type(exc).__name__}: {exc}"[:2000]},
        )
        metrics.JOB_RUNS.labels(job=job, outcome="failed").inc()
        raise
    finally:
        metrics.JOB_DURATION.labels(job=job).observe(time.perf_counter() - started)
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.SUCCEEDED, finished_at=timezone.now(), detail=detail)
    metrics.JOB_RUNS.labels(job=job, outcome="succeeded").inc()
    _record_success(job, period)
    run.refresh_from_db()
    return run


def _record_success(job: str, period: timedelta) -> None:
    """The BeatJobMissed alert compares these two (monitoring/rules/itsm.yml)."""
    metrics.JOB_LAST_SUCCESS.labels(job=job).set(time.time())
    metrics.JOB_PERIOD.labels(job=job).set(period.total_seconds())
