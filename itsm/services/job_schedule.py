"""The job registry: every scheduled job as read from Celery Beat's schedule (`app.conf.beat_schedule`, the single
source of truth), with its schedule in words, its period and when it is due."""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from celery.schedules import crontab
from celery.schedules import schedule as interval
from django.conf import settings

from itsm_project.celery import app

# A run that starts this much before its due time still counts for it (clocks of Beat and workers differ a little).
CLOCK_SKEW = timedelta(minutes=1)
# Far enough back or ahead to find the next 29 February of a crontab that asks for it.
SEARCH_DAYS = 5 * 366
# A crontab's slot is the shortest gap between its due times from this moment on, over this many of them: enough to
# meet a February (and a leap day) for a monthly job. The same moment every time, so the slot never changes.
SLOT_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)
SLOT_SAMPLES = 60
_SLOTS: dict[tuple[str, str], timedelta] = {}


@dataclass(frozen=True)
class ScheduledJob:
    """One entry of the Beat schedule. Its name is also the name its runs are recorded under (JobRun.job)."""

    name: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    schedule: Any  # a crontab, or a number of seconds
    expires: float | None

    @property
    def is_crontab(self) -> bool:
        return isinstance(self.schedule, crontab)

    @property
    def every(self) -> timedelta | None:
        """The interval of an interval job; None for a crontab."""
        if isinstance(self.schedule, interval):
            run_every: timedelta = self.schedule.run_every  # type: ignore[attr-defined]
            return run_every
        if isinstance(self.schedule, timedelta):
            return self.schedule
        if isinstance(self.schedule, int | float):
            return timedelta(seconds=self.schedule)
        return None

    @property
    def cron(self) -> str | None:
        """The crontab as a cron expression (minute hour day-of-month month day-of-week)."""
        if not self.is_crontab:
            return None
        return _cron_text(self.schedule)

    def describe(self) -> str:
        """The schedule in words: "every 30 s", "daily at 03:15 UTC", "weekly on Sunday at 03:20 UTC"."""
        every = self.every
        if every is not None:
            return f"every {_duration(every)}"
        return _describe_crontab(self.schedule) if self.is_crontab else str(self.schedule)

    @property
    def slot(self) -> timedelta:
        """The length of the slot a run is recorded for (at most one run per slot, itsm.services.jobs): the interval,
        or for a crontab the shortest gap between two of its due times (an hour for an hourly job, 28 days for a
        monthly one, whose runs are 28 to 31 days apart), so that no two due times share a slot."""
        every = self.every
        return every if every is not None else _crontab_slot(self.schedule)

    def period(self, now: datetime) -> timedelta:
        """The time between two runs (for a crontab, between the last due time and the next one)."""
        every = self.every
        if every is not None:
            return every
        last = self.previous_due(now) or now
        return (self.next_due(last) or last) - last

    def grace(self) -> timedelta:
        """How late a run may start before the job counts as missed: ITSM_JOB_GRACE_SECONDS, or longer when the
        schedule lets its message wait longer (`expires`), because until then a worker may still pick it up."""
        return timedelta(seconds=max(settings.ITSM_JOB_GRACE_SECONDS, self.expires or 0))

    def previous_due(self, at: datetime) -> datetime | None:
        """The last time at or before `at` when a crontab job was due (None for interval jobs)."""
        return next(_crontab_times(self.schedule, at, backwards=True), None) if self.is_crontab else None

    def next_due(self, at: datetime) -> datetime | None:
        """The first time after `at` when a crontab job is due (None for interval jobs)."""
        return next(_crontab_times(self.schedule, at, backwards=False), None) if self.is_crontab else None

    def missed_due(self, *, now: datetime, last_started: datetime | None, watched_since: datetime) -> datetime | None:
        """The due time this job missed: no run started for it although its grace period is over. None when the
        job is on time, or when that due time came before the job was watched (a fresh install, a new job)."""
        every = self.every
        if every is not None:
            next_run = (last_started or watched_since) + every
            return next_run if now > next_run + self.grace() else None
        due = self.previous_due(now - self.grace())
        if due is None or due < watched_since:
            return None
        if last_started is not None and last_started >= due - CLOCK_SKEW:
            return None
        return due

    def due_after(self, *, now: datetime, last_started: datetime | None, watched_since: datetime | None) -> datetime:
        """When the job is next due: for a crontab its next time; for an interval job one period after its last
        run (Beat counts intervals from the last time it sent the job)."""
        every = self.every
        if every is None:
            return self.next_due(now) or now
        return (last_started or watched_since or now) + every


def jobs_all() -> list[ScheduledJob]:
    """Every job of the Beat schedule, in the schedule's order."""
    return [_job(name, entry) for name, entry in app.conf.beat_schedule.items()]


def job_get(name: str) -> ScheduledJob | None:
    entry = app.conf.beat_schedule.get(name)
    return _job(name, entry) if entry is not None else None


def _job(name: str, entry: dict[str, Any]) -> ScheduledJob:
    options = entry.get("options") or {}
    queue = options.get("queue") or app.amqp.router.route({}, entry["task"])["queue"].name
    return ScheduledJob(
        name=name,
        task=entry["task"],
        args=tuple(entry.get("args") or ()),
        kwargs=dict(entry.get("kwargs") or {}),
        queue=str(queue),
        schedule=entry["schedule"],
        expires=options.get("expires"),
    )


# --- crontab arithmetic (Celery's crontab: every field must match, day of week 0 = Sunday) ----------------------
def _crontab_times(c: Any, at: datetime, *, backwards: bool) -> Iterator[datetime]:
    tz = c.tz or UTC
    local = at.astimezone(tz)
    step = -1 if backwards else 1
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset * step)
        if not _day_matches(c, day):
            continue
        times = [(hour, minute) for hour in sorted(c.hour) for minute in sorted(c.minute)]
        for hour, minute in reversed(times) if backwards else times:
            candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            if (candidate <= local) if backwards else (candidate > local):
                yield candidate.astimezone(UTC)
                return


def _crontab_slot(c: Any) -> timedelta:
    key = (_cron_text(c), _zone(c))
    if key not in _SLOTS:  # the same for every process: computed from SLOT_REFERENCE, kept for the next run
        times = [SLOT_REFERENCE]
        for _ in range(SLOT_SAMPLES):
            times.append(next(_crontab_times(c, times[-1], backwards=False)))
        _SLOTS[key] = min(later - earlier for earlier, later in itertools.pairwise(times[1:]))
    return _SLOTS[key]


def _day_matches(c: Any, day: date) -> bool:
    return day.month in c.month_of_year and day.day in c.day_of_month and day.isoweekday() % 7 in c.day_of_week


def _describe_crontab(c: Any) -> str:
    fallback = f"cron {_cron_text(c)} {_zone(c)}"
    every_day = len(c.day_of_month) == 31 and len(c.month_of_year) == 12
    every_weekday = len(c.day_of_week) == 7
    if len(c.minute) != 1:
        return fallback
    minute = next(iter(c.minute))
    if len(c.hour) == 24 and every_day and every_weekday:
        return f"hourly at minute {minute}"
    if len(c.hour) != 1 or len(c.month_of_year) != 12:
        return fallback
    at = f"{next(iter(c.hour)):02d}:{minute:02d} {_zone(c)}"
    if every_day and every_weekday:
        return f"daily at {at}"
    if every_day and len(c.day_of_week) == 1:
        return f"weekly on {calendar.day_name[(next(iter(c.day_of_week)) - 1) % 7]} at {at}"
    if len(c.day_of_month) == 1 and every_weekday:
        return f"monthly on day {next(iter(c.day_of_month))} at {at}"
    return fallback


def _cron_text(c: Any) -> str:
    return f"{c._orig_minute} {c._orig_hour} {c._orig_day_of_month} {c._orig_month_of_year} {c._orig_day_of_week}"


def _zone(c: Any) -> str:
    return str(c.tz or "UTC")


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
