"""The retention rule of the operations manual, as a pure function of the set of backups.

| tier    | kept      | where (manual)   |
|---------|-----------|------------------|
| hourly  | 24 hours  | local            |
| daily   | 30 days   | local + S3       |
| weekly  | 12 weeks  | S3               |
| monthly | 12 months | S3 (Glacier)     |

Local disk and S3 are judged independently. In each, for each kind, nothing is deleted unless a verified backup
newer than it exists there, and the newest verified backup is never deleted. A copy goes when it is older than
its tier keeps, or, for the S3-only tiers (weekly, monthly), its local copy goes once its S3 copy exists.
Without S3 configured, local disk keeps every tier for its full time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

KEEP = {
    "hourly": timedelta(hours=24),
    "daily": timedelta(days=30),
    "weekly": timedelta(weeks=12),
    # Twelve monthly backups: the thirteenth is always at least 365 days old.
    "monthly": timedelta(days=365),
}
# Tiers that the manual keeps in S3 only, and tiers that go to S3 at all.
OFFSITE_ONLY = frozenset({"weekly", "monthly"})
OFFSITE = frozenset({"daily", "weekly", "monthly"})

LOCATIONS = ("local", "s3")


@dataclass(frozen=True)
class Copy:
    """What retention needs to know of one backup."""

    id: int
    kind: str
    tier: str
    taken_at: datetime
    verified: bool
    local: bool
    s3: bool


@dataclass(frozen=True)
class Deletion:
    backup_id: int
    location: str
    reason: str


def retention_plan(backups: Iterable[Copy], *, now: datetime, offsite: bool) -> list[Deletion]:
    """The copies to delete now, oldest first. `offsite` tells whether S3 is configured."""
    backups = list(backups)
    plan: list[Deletion] = []
    for kind in sorted({b.kind for b in backups}):
        for location in LOCATIONS:
            held = [b for b in backups if b.kind == kind and getattr(b, location)]
            verified = [b for b in held if b.verified]
            if not verified:
                continue  # nothing proven restorable here: keep everything
            newest = max(verified, key=lambda b: (b.taken_at, b.id))
            for backup in sorted(held, key=lambda b: (b.taken_at, b.id)):
                if backup is newest or (backup.taken_at, backup.id) >= (newest.taken_at, newest.id):
                    continue
                reason = _reason(backup, location, now=now, offsite=offsite)
                if reason:
                    plan.append(Deletion(backup.id, location, reason))
    return sorted(plan, key=lambda d: (d.backup_id, d.location))


def _reason(backup: Copy, location: str, *, now: datetime, offsite: bool) -> str:
    age = now - backup.taken_at
    keep = KEEP.get(backup.tier)
    if keep is not None and age >= keep:
        return f"{backup.tier} backups are kept {_describe(keep)}; this one is {_describe(age)} old"
    if location == "local" and offsite and backup.tier in OFFSITE_ONLY and backup.s3:
        return f"{backup.tier} backups are kept in S3 only, and its S3 copy exists"
    return ""


def _describe(delta: timedelta) -> str:
    if delta >= timedelta(days=2):
        return f"{delta.days} days"
    return f"{delta.total_seconds() / 3600:.1f} hours"
