"""Frozen moments and job runs written as they would be by the jobs themselves."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from itsm.models import JobRun
from itsm.services.job_schedule import jobs_all

# A Monday; the Beat schedule's daily cleanup is due at 03:15 UTC, the weekly VACUUM on Sundays at 05:30 UTC.
MONDAY = datetime(2030, 1, 7, 0, 0, tzinfo=UTC)


def ran(job: str, at: datetime, status: str = JobRun.Status.SUCCEEDED) -> JobRun:
    """A finished scheduled run of `job` that started at `at`."""
    return JobRun.objects.create(job=job, slot=at, started_at=at, finished_at=at, status=status, duration_seconds=0)


def all_ran(at: datetime, *, except_: Iterable[str] = ()) -> None:
    """Every job of the Beat schedule started a run at `at`, but those named (and the switch, whose ticks the tests
    run through its task)."""
    skipped = {"watch_jobs", *except_}
    for job in jobs_all():
        if job.name not in skipped:
            ran(job.name, at)
