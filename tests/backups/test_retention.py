"""Retention is a pure function of the set of backups: tested on a generated year of scheduled backups."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from itsm.backup.retention import Copy, retention_plan

START = datetime(2025, 1, 1, tzinfo=UTC)


def schedule_year() -> list[tuple[datetime, str]]:
    """The Beat schedule of itsm_project/celery.py over a year: (time, tier) in time order."""
    events: list[tuple[datetime, str]] = []
    hour = START
    while hour < START + timedelta(days=365):
        events.append((hour.replace(minute=5), "hourly"))
        if hour.hour == 2:
            events.append((hour.replace(minute=20), "daily"))
        if hour.hour == 3 and hour.weekday() == 6:
            events.append((hour.replace(minute=20), "weekly"))
        if hour.hour == 4 and hour.day == 1:
            events.append((hour.replace(minute=20), "monthly"))
        hour += timedelta(hours=1)
    return sorted(events)


def simulate(*, offsite: bool, verified: bool | float = True, seed: int = 1) -> tuple[dict[int, Copy], list[str]]:
    """Run the year as the platform does: after each backup verifies, apply the plan. Returns the final copies and
    any invariant that was broken on the way."""
    rng = random.Random(seed)
    copies: dict[int, Copy] = {}
    broken: list[str] = []
    for number, (at, tier) in enumerate(schedule_year(), start=1):
        ok = verified if isinstance(verified, bool) else rng.random() < verified
        copies[number] = Copy(number, "database", tier, at, ok, True, offsite and tier != "hourly")
        if not ok:
            continue  # retention runs only after a backup verified
        now = at + timedelta(minutes=3)
        plan = retention_plan(copies.values(), now=now, offsite=offsite)
        for location in ("local", "s3"):
            held = [c for c in copies.values() if getattr(c, location)]
            newest = max((c for c in held if c.verified), key=lambda c: c.taken_at, default=None)
            for deletion in (d for d in plan if d.location == location):
                victim = copies[deletion.backup_id]
                if newest is None or victim.id == newest.id or victim.taken_at >= newest.taken_at:
                    broken.append(f"{now}: deleted {victim} from {location} without a newer verified backup")
        for deletion in plan:
            old = copies[deletion.backup_id]
            left = Copy(
                old.id,
                old.kind,
                old.tier,
                old.taken_at,
                old.verified,
                old.local and deletion.location != "local",
                old.s3 and deletion.location != "s3",
            )
            if left.local or left.s3:
                copies[deletion.backup_id] = left
            else:
                del copies[deletion.backup_id]
    return copies, broken


def tiers_in(copies: dict[int, Copy], location: str) -> Counter[str]:
    return Counter(c.tier for c in copies.values() if getattr(c, location))


def test_a_year_without_s3_keeps_exactly_the_manuals_set_on_local_disk():
    copies, broken = simulate(offsite=False)
    assert broken == []
    assert tiers_in(copies, "local") == {"hourly": 24, "daily": 30, "weekly": 12, "monthly": 12}
    newest_hourly = max(c.taken_at for c in copies.values() if c.tier == "hourly" and c.local)
    oldest_hourly = min(c.taken_at for c in copies.values() if c.tier == "hourly" and c.local)
    assert newest_hourly - oldest_hourly == timedelta(hours=23)


def test_a_year_with_s3_keeps_hourly_and_daily_locally_and_daily_weekly_monthly_in_s3():
    copies, broken = simulate(offsite=True)
    assert broken == []
    assert tiers_in(copies, "local") == {"hourly": 24, "daily": 30}
    assert tiers_in(copies, "s3") == {"daily": 30, "weekly": 12, "monthly": 12}


def test_the_kept_monthlies_are_the_last_twelve_first_of_the_month_backups():
    copies, _ = simulate(offsite=True)
    months = sorted(c.taken_at.month for c in copies.values() if c.tier == "monthly" and c.s3)
    assert months == list(range(1, 13))


def test_with_failing_verifications_no_deletion_ever_lacks_a_newer_verified_backup():
    copies, broken = simulate(offsite=True, verified=0.8, seed=7)
    assert broken == []
    local = tiers_in(copies, "local")
    assert local["hourly"] <= 24
    assert local["daily"] <= 30


def test_nothing_is_deleted_while_no_backup_is_verified():
    old = [Copy(i, "database", "hourly", START + timedelta(hours=i), False, True, False) for i in range(100)]
    assert retention_plan(old, now=START + timedelta(days=30), offsite=False) == []


def test_the_newest_verified_backup_is_kept_however_old_and_newer_unverified_ones_too():
    verified = Copy(1, "database", "hourly", START, True, True, False)
    failing = [Copy(i, "database", "hourly", START + timedelta(hours=i), False, True, False) for i in range(2, 50)]
    plan = retention_plan([verified, *failing], now=START + timedelta(days=10), offsite=False)
    assert plan == []


def test_local_disk_and_s3_are_judged_independently():
    # The newest verified daily exists only locally (its upload is pending): the S3 copies are not touched.
    old_in_both = Copy(1, "database", "daily", START, True, True, True)
    newest_local_only = Copy(2, "database", "daily", START + timedelta(days=40), True, True, False)
    plan = retention_plan([old_in_both, newest_local_only], now=START + timedelta(days=40, hours=1), offsite=True)
    assert [(d.backup_id, d.location) for d in plan] == [(1, "local")]
    assert "30 days" in plan[0].reason


def test_kinds_are_judged_independently():
    database = Copy(1, "database", "daily", START, True, True, False)
    media_old = Copy(2, "media", "daily", START, True, True, False)
    media_new = Copy(3, "media", "daily", START + timedelta(days=31), True, True, False)
    plan = retention_plan([database, media_old, media_new], now=START + timedelta(days=31), offsite=False)
    assert [(d.backup_id, d.location) for d in plan] == [(2, "local")]
