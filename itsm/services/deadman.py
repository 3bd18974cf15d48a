"""The dead-man switch for our own Beat: every minute, each scheduled job must have started a run for its last due
time (plus a grace period), or it is missed.

A missed job fires an alert through the alert intake (fingerprint per job, one alert group for all of them), so
the first one opens ONE high incident and the others join it; nothing is sent again while the alert fires. When
the job runs again its alert resolves and the incident's timeline says so; the incident itself stays open for a
person to resolve, as the backup age check's does. Failures are not misses: a job that runs and fails has a
failed run, counted in `itsm_job_runs_total{outcome="failed"}`, and Prometheus's BeatJobMissed (which looks at the
last success, `itsm_job_last_success_timestamp_seconds`) catches a job that keeps failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from itsm import metrics
from itsm.models import Alert, Incident, JobRun, JobWatch
from itsm.services.alerts import alerts_ingest
from itsm.services.job_schedule import ScheduledJob, jobs_all
from itsm.services.jobs import job_latest_runs, job_runs_expire_queued

logger = logging.getLogger(__name__)

ALERTNAME = "ScheduledJobMissed"
FINGERPRINT_PREFIX = "itsm-job-missed-"
GROUP_KEY = "rule:scheduled-jobs-missed"
# A manual run still queued after this long lost its message; it is marked failed.
QUEUED_RUN_TIMEOUT = timedelta(days=1)


@dataclass(frozen=True)
class JobState:
    """A scheduled job as the switch sees it now."""

    job: ScheduledJob
    last_run: JobRun | None
    last_success: JobRun | None
    watched_since: datetime | None
    missed_due: datetime | None
    next_due: datetime

    @property
    def state(self) -> str:
        """ok, missed (no run for a due time), failing (the last run failed), never_run (not due yet)."""
        if self.missed_due is not None:
            return "missed"
        if self.last_run is None:
            return "never_run"
        return "failing" if self.last_run.status == JobRun.Status.FAILED else "ok"


def job_states(jobs: list[ScheduledJob], *, now: datetime | None = None, watch: bool = False) -> list[JobState]:
    """The state of each job in three queries, whatever the number of jobs. With `watch`, jobs seen for the first
    time start being watched now (only the switch does that; a reader uses the first run as the origin)."""
    now = now or timezone.now()
    names = [job.name for job in jobs]
    if watch:
        JobWatch.objects.bulk_create([JobWatch(job=name, first_seen_at=now) for name in names], ignore_conflicts=True)
    watched = dict(JobWatch.objects.filter(job__in=names).values_list("job", "first_seen_at"))
    latest = job_latest_runs(names)
    states = []
    for job in jobs:
        runs = latest[job.name]
        last_started = runs.last_run.started_at if runs.last_run else None
        since = watched.get(job.name)
        origin = min(since, last_started) if since and last_started else since or last_started
        missed = job.missed_due(now=now, last_started=last_started, watched_since=origin) if origin else None
        next_due = job.due_after(now=now, last_started=last_started, watched_since=origin)
        states.append(JobState(job, runs.last_run, runs.last_success, origin, missed, next_due))
    return states


def jobs_watch(*, now: datetime | None = None) -> dict[str, Any]:
    """One tick of the switch: fire an alert for each newly missed job, resolve the alerts of jobs that ran again,
    refresh the per-job gauges from the database, and fail manual runs whose message was lost."""
    now = now or timezone.now()
    states = job_states(jobs_all(), now=now, watch=True)
    _refresh_gauges(states, now)
    expired = job_runs_expire_queued(now=now, older_than=QUEUED_RUN_TIMEOUT)
    missed = {s.job.name: s for s in states if s.missed_due is not None}
    firing = {
        fingerprint.removeprefix(FINGERPRINT_PREFIX)
        for fingerprint in Alert.objects.filter(
            fingerprint__startswith=FINGERPRINT_PREFIX, status=Alert.Status.FIRING
        ).values_list("fingerprint", flat=True)
    }
    to_fire = [missed[name] for name in missed if name not in firing]
    to_resolve = sorted(firing - set(missed))
    alerts = [_firing(state, now) for state in to_fire] + [_resolved(name, now) for name in to_resolve]
    if alerts:
        alerts_ingest(
            payload={"version": "4", "groupKey": GROUP_KEY, "alerts": alerts}, now=now, source=Incident.Source.RULE
        )
    for state in to_fire:
        logger.error("scheduled job %s missed its slot of %s", state.job.name, state.missed_due)
    return {
        "watched": len(states),
        "missed": sorted(missed),
        "fired": sorted(state.job.name for state in to_fire),
        "resolved": to_resolve,
        "queued_runs_expired": expired,
    }


def _firing(state: JobState, now: datetime) -> dict[str, Any]:
    job = state.job
    last = state.last_run
    seen = f"its last run started {last.started_at:%Y-%m-%d %H:%M:%S} UTC ({last.status})" if last else "it never ran"
    return {
        "status": "firing",
        "labels": {"alertname": ALERTNAME, "job": job.name, "severity": "warning", "itsm_severity": "high"},
        "annotations": {
            "summary": f"Scheduled job {job.name} missed its slot",
            "description": (
                f"{job.name} ({job.describe()}, task {job.task}, queue {job.queue}) was due at "
                f"{state.missed_due:%Y-%m-%d %H:%M:%S} UTC and no run started within "
                f"{int(job.grace().total_seconds())} s; {seen}. Is Celery Beat running, and a worker on "
                f"the {job.queue} queue? See docs/operations.md#scheduled-jobs."
            ),
        },
        "startsAt": state.missed_due,
        "endsAt": None,
        "generatorURL": "",
        "fingerprint": f"{FINGERPRINT_PREFIX}{job.name}",
    }


def _resolved(name: str, now: datetime) -> dict[str, Any]:
    return {
        "status": "resolved",
        "labels": {"alertname": ALERTNAME, "job": name, "severity": "warning", "itsm_severity": "high"},
        "annotations": {"summary": f"Scheduled job {name} runs again", "description": "A run started."},
        "startsAt": None,
        "endsAt": now,
        "generatorURL": "",
        "fingerprint": f"{FINGERPRINT_PREFIX}{name}",
    }


def _refresh_gauges(states: list[JobState], now: datetime) -> None:
    """Every process that exports metrics shows every job's last success, even when a job's own last run happened
    in a process that has since restarted (gauges with multiprocess_mode "max" keep the newest value)."""
    for state in states:
        metrics.JOB_PERIOD.labels(job=state.job.name).set(state.job.period(now).total_seconds())
        success = state.last_success
        if success is not None and success.finished_at is not None:
            metrics.JOB_LAST_SUCCESS.labels(job=state.job.name).set(success.finished_at.timestamp())
