"""The SLA clock, pure: when does a target fall due, given the calendar and the intervals the clock ran in.

Due times are derived from the ticket's event history every time, never incremented, so a change of priority,
policy or calendar is a recomputation and never a correction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A calendar with no working time left in this horizon (e.g. every day a holiday) never falls due.
_HORIZON = timedelta(days=3 * 366)


def _utc(moment: datetime) -> datetime:
    # Python adds and subtracts aware datetimes that share a ZoneInfo as wall-clock times, which is an hour off
    # across a DST change; in UTC every minute is a real minute.
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Calendar:
    """Working time. `tz=None` means around the clock."""

    tz: ZoneInfo | None = None
    weekdays: frozenset[int] = frozenset(range(5))
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays: frozenset[date] = field(default_factory=frozenset)

    def working_periods(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working periods overlapping [start, end), clipped to it, in order, in UTC."""
        start, end = _utc(start), _utc(end)
        if self.tz is None:
            if start < end:
                yield start, end
            return
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            if day.weekday() in self.weekdays and day not in self.holidays:
                opens = _utc(datetime.combine(day, self.day_start, self.tz))
                closes = _utc(datetime.combine(day, self.day_end, self.tz))
                lo, hi = max(opens, start), min(closes, end)
                if lo < hi:
                    yield lo, hi
            day += timedelta(days=1)


ALWAYS = Calendar()

# An interval in which the clock runs; `None` as the end means it is still running.
Interval = tuple[datetime, datetime | None]


def due_at(calendar: Calendar, running: Sequence[Interval], minutes: float) -> datetime | None:
    """The moment (in UTC) the clock has run `minutes` of working time, or None while it is stopped short of that."""
    remaining = timedelta(minutes=minutes)
    for start, end in running:
        stop = end if end is not None else start + _HORIZON
        for lo, hi in calendar.working_periods(start, stop):
            if hi - lo >= remaining:
                return lo + remaining
            remaining -= hi - lo
    return None


def running_intervals(
    status_changes: Sequence[tuple[datetime, str]], paused: frozenset[str], until: datetime | None = None
) -> list[Interval]:
    """Turn (time, new status) changes, the creation first, into the intervals the clock ran in.

    Changes at or after `until` are ignored, and a clock still running at the end stays open: the due time is
    then the deadline as if the clock had kept running, which is what a met target is measured against.
    The creation always counts, even when `until` is the same instant (a ticket resolved as it was opened).
    """
    intervals: list[Interval] = []
    running_since: datetime | None = None
    for index, (when, status) in enumerate(status_changes):
        if index > 0 and until is not None and when >= until:
            break
        if status in paused and running_since is not None:
            intervals.append((running_since, when))
            running_since = None
        elif status not in paused and running_since is None:
            running_since = when
    if running_since is not None:
        intervals.append((running_since, None))
    return intervals


def without(running: Sequence[Interval], pauses: Sequence[tuple[datetime, datetime]]) -> list[Interval]:
    """The running intervals with the pauses (e.g. maintenance windows of the ticket's service) cut out."""
    result = list(running)
    for pause_start, pause_end in sorted(pauses):
        cut: list[Interval] = []
        for start, end in result:
            if (end is not None and end <= pause_start) or pause_end <= start:
                cut.append((start, end))
                continue
            if start < pause_start:
                cut.append((start, pause_start))
            if end is None or end > pause_end:
                cut.append((pause_end, end))
        result = cut
    return result
