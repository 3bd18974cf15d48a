"""Teams with rotations: people take turns, and the clock is frozen where it matters."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from itsm.models import Override, Rotation, RotationMember, Team
from tests.factories import TeamFactory, make_user


def make_team(name: str = "Platform") -> Team:
    return TeamFactory.create(name=name, slug=name.lower().replace(" ", "-"))


def make_people(*names: str, role: str = "agent") -> list[Any]:
    return [make_user(name, role) for name in names]


def make_rotation(
    team: Team,
    members: list[Any],
    *,
    name: str = "Primary",
    shift_length_hours: int = 24,
    handoff_time: time = time(9, 0),
    time_zone: str = "Europe/Berlin",
    start_date: date = date(2026, 3, 23),
) -> Rotation:
    rotation = Rotation.objects.create(
        team=team,
        name=name,
        shift_length_hours=shift_length_hours,
        handoff_time=handoff_time,
        time_zone=time_zone,
        start_date=start_date,
    )
    for position, user in enumerate(members):
        RotationMember.objects.create(rotation=rotation, user=user, position=position)
    return rotation


def make_override(rotation: Rotation, user: Any, starts_at: Any, ends_at: Any, note: str = "") -> Override:
    return Override.objects.create(rotation=rotation, user=user, starts_at=starts_at, ends_at=ends_at, note=note)
