"""Who is on call: the schedule of a team's rotation, with overrides, computed on the wall clock of the
rotation's time zone (a daily 09:00 handoff stays at 09:00 across daylight-saving changes).

A team may have several rotations over time: the one that started last (and has members) is in effect, so a
reorganised rotation can be created ahead of its start date. Members and overrides of inactive accounts are
skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch

from itsm.models import Override, Rotation, RotationMember, Team
from itsm.models.oncall import MAX_SHIFT_HOURS


@dataclass(frozen=True)
class OnCall:
    """Who answers for `team` at a moment: `user` from `shift_start` until `shift_end`, then `next_user`.
    The bounds are those of the stint: a shift cut short by an override ends when the override starts."""

    team: Team
    rotation: Rotation
    user: Any
    next_user: Any | None
    shift_start: datetime
    shift_end: datetime
    overridden: bool


@dataclass(frozen=True)
class _Segment:
    rotation: Rotation
    user: Any
    start: datetime
    end: datetime
    overridden: bool
    # Position in the rotation of the person the schedule puts on call (None while an override runs before the
    # schedule has one, which cannot happen for the rotation in effect).
    index: int | None


class _Schedule:
    """The rotations of one team, loaded once, answering "who at t" without further queries."""

    def __init__(self, team: Team, rotations: list[Rotation]) -> None:
        self.team = team
        # Only rotations someone can be on call in; the newest start first.
        self.rotations = sorted(
            (rotation for rotation in rotations if _members(rotation)),
            key=lambda rotation: (_anchor_utc(rotation), rotation.pk),
            reverse=True,
        )

    def rotation_at(self, at: datetime) -> Rotation | None:
        for rotation in self.rotations:
            if _anchor_utc(rotation) <= at:
                return rotation
        return None

    def _next_rotation_start(self, at: datetime) -> datetime | None:
        starts = [_anchor_utc(rotation) for rotation in self.rotations if _anchor_utc(rotation) > at]
        return min(starts, default=None)

    def segment_at(self, at: datetime) -> _Segment | None:
        rotation = self.rotation_at(at)
        if rotation is None:
            return None
        segment = _segment(rotation, at)
        if segment is None:
            return None
        takeover = self._next_rotation_start(at)
        if takeover is not None and takeover < segment.end:
            segment = _Segment(rotation, segment.user, segment.start, takeover, segment.overridden, segment.index)
        return segment

    def oncall_at(self, at: datetime) -> OnCall | None:
        segment = self.segment_at(at)
        if segment is None:
            return None
        following = self.segment_at(segment.end)
        return OnCall(
            team=self.team,
            rotation=segment.rotation,
            user=segment.user,
            next_user=following.user if following else None,
            shift_start=segment.start,
            shift_end=segment.end,
            overridden=segment.overridden,
        )

    def chain_at(self, at: datetime) -> list[Any]:
        segment = self.segment_at(at)
        if segment is None:
            return []
        chain = [segment.user]
        members = _members(segment.rotation)
        if segment.index is not None:
            for step in range(len(members)):
                chain.append(members[(segment.index + step) % len(members)])
        unique: list[Any] = []
        for user in chain:
            if user.pk not in {seen.pk for seen in unique}:
                unique.append(user)
        return unique


def oncall_for_team(team: Team, at: datetime) -> OnCall | None:
    """Who is on call for `team` at `at`, and who is next; None when the team has no rotation in effect."""
    at = _utc(at)
    return _load([team], at)[team.pk].oncall_at(at)


def escalation_chain(team: Team, at: datetime) -> list[Any]:
    """The people to page in order: the one on call at `at` (an override's user first, then the scheduled
    member), then the following members in rotation order. Empty when the team has no rotation in effect."""
    at = _utc(at)
    return _load([team], at)[team.pk].chain_at(at)


def oncall_now_all(at: datetime, *, teams: Iterable[Team] | None = None) -> list[tuple[Team, OnCall | None]]:
    """On call at `at` for every team (or the given ones), in their order, in a constant number of queries."""
    at = _utc(at)
    team_list = list(teams) if teams is not None else list(Team.objects.all())
    schedules = _load(team_list, at)
    return [(team, schedules[team.pk].oncall_at(at)) for team in team_list]


# --- loading -----------------------------------------------------------------------------------------------------


def _load(teams: list[Team], at: datetime) -> dict[int, _Schedule]:
    """Three queries whatever the number of teams: rotations, their active members, their relevant overrides."""
    by_team: dict[int, list[Rotation]] = defaultdict(list)
    if teams:
        members = RotationMember.objects.filter(user__is_active=True).select_related("user").order_by("position", "id")
        # An override matters if it is still running at the earliest shift start we may look at, or later.
        overrides = (
            Override.objects.filter(ends_at__gt=at - timedelta(hours=MAX_SHIFT_HOURS), user__is_active=True)
            .select_related("user")
            .order_by("starts_at", "id")
        )
        rotations = Rotation.objects.filter(team__in=[team.pk for team in teams]).prefetch_related(
            Prefetch("memberships", queryset=members, to_attr="active_members"),
            Prefetch("overrides", queryset=overrides, to_attr="relevant_overrides"),
        )
        for rotation in rotations:
            by_team[rotation.team_id].append(rotation)
    return {team.pk: _Schedule(team, by_team.get(team.pk, [])) for team in teams}


def _members(rotation: Rotation) -> list[Any]:
    return [membership.user for membership in rotation.active_members]  # type: ignore[attr-defined]


def _overrides(rotation: Rotation) -> list[Override]:
    return rotation.relevant_overrides  # type: ignore[attr-defined]


# --- the wall-clock arithmetic -------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("on-call times must be timezone-aware")
    return moment.astimezone(UTC)


def _local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as UTC. A time skipped by a spring-forward change counts with the offset before
    it (02:30 on that night is 03:30 summer time); a repeated one is its first occurrence."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _anchor(rotation: Rotation) -> datetime:
    return datetime.combine(rotation.start_date, rotation.handoff_time)


def _anchor_utc(rotation: Rotation) -> datetime:
    return _local_to_utc(_anchor(rotation), ZoneInfo(rotation.time_zone))


def _shift_bounds(rotation: Rotation, index: int) -> tuple[datetime, datetime]:
    zone = ZoneInfo(rotation.time_zone)
    length = timedelta(hours=rotation.shift_length_hours)
    anchor = _anchor(rotation)
    return _local_to_utc(anchor + index * length, zone), _local_to_utc(anchor + (index + 1) * length, zone)


def _shift_index(rotation: Rotation, at: datetime) -> int:
    """The number of the shift `at` falls in (0 is the first), counted on the local wall clock."""
    zone = ZoneInfo(rotation.time_zone)
    local = at.astimezone(zone).replace(tzinfo=None)
    index = (local - _anchor(rotation)) // timedelta(hours=rotation.shift_length_hours)
    # Within a repeated autumn hour the wall clock is ambiguous: settle by comparing real (UTC) instants.
    for _ in range(3):
        start, end = _shift_bounds(rotation, index)
        if at < start:
            index -= 1
        elif at >= end:
            index += 1
        else:
            break
    return index


def _segment(rotation: Rotation, at: datetime) -> _Segment | None:
    members = _members(rotation)
    overrides = _overrides(rotation)
    index = _shift_index(rotation, at)
    scheduled_index = index % len(members) if index >= 0 else None
    active = [override for override in overrides if override.starts_at <= at < override.ends_at]
    if active:
        winner = max(active, key=lambda override: (override.starts_at, override.pk))
        # A later-starting override takes over from this one when it starts.
        takeovers = [
            override.starts_at
            for override in overrides
            if at < override.starts_at < winner.ends_at
            and (override.starts_at, override.pk) > (winner.starts_at, winner.pk)
        ]
        return _Segment(
            rotation, winner.user, winner.starts_at, min([winner.ends_at, *takeovers]), True, scheduled_index
        )
    if scheduled_index is None:
        return None
    start, end = _shift_bounds(rotation, index)
    start = max([start, *(override.ends_at for override in overrides if start < override.ends_at <= at)])
    end = min([end, *(override.starts_at for override in overrides if at < override.starts_at < end)])
    return _Segment(rotation, members[scheduled_index], start, end, False, scheduled_index)
