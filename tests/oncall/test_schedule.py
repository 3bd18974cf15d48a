"""Who is on call: the rotation cycles through its members shift by shift on the local wall clock, across
daylight-saving changes; overrides win; a newer rotation takes over from its start date."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from itsm.models import Team
from itsm.services.oncall import escalation_chain, oncall_for_team, oncall_now_all
from tests.oncall.conftest import make_override, make_people, make_rotation, make_team

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def names(users: list[Any]) -> list[str]:
    return [user.username for user in users]


def on_call_name(team: Team, at: datetime) -> str | None:
    oncall = oncall_for_team(team, at)
    return oncall.user.username if oncall else None


@pytest.fixture
def team() -> Team:
    return make_team()


@pytest.fixture
def people() -> list[Any]:
    return make_people("ana", "ben", "cleo")


def test_daily_rotation_hands_over_at_nine_and_cycles_through_the_members(team: Team, people: list[Any]) -> None:
    make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 3, 2))
    expected = ["ana", "ben", "cleo", "ana", "ben", "cleo", "ana"]
    for day, name in enumerate(expected):
        moment = berlin(2026, 3, 2 + day, 9, 0)
        assert on_call_name(team, moment) == name, moment
        assert on_call_name(team, moment + timedelta(hours=23, minutes=59)) == name
    # One minute before the very first handoff nobody is on call: the rotation has not started.
    assert oncall_for_team(team, berlin(2026, 3, 2, 8, 59)) is None


def test_the_answer_gives_the_shift_bounds_and_the_next_person(team: Team, people: list[Any]) -> None:
    rotation = make_rotation(team, people, shift_length_hours=168, start_date=date(2026, 1, 5))
    oncall = oncall_for_team(team, berlin(2026, 1, 14, 15, 30))
    assert oncall is not None
    assert (oncall.team, oncall.rotation) == (team, rotation)
    assert oncall.user.username == "ben"
    assert getattr(oncall.next_user, "username", None) == "cleo"
    assert oncall.shift_start == berlin(2026, 1, 12, 9, 0)
    assert oncall.shift_end == berlin(2026, 1, 19, 9, 0)
    assert oncall.overridden is False


def test_twelve_hour_shifts_alternate_day_and_night(team: Team, people: list[Any]) -> None:
    make_rotation(team, people[:2], shift_length_hours=12, handoff_time=time(8, 0), start_date=date(2026, 5, 4))
    assert on_call_name(team, berlin(2026, 5, 4, 12, 0)) == "ana"
    assert on_call_name(team, berlin(2026, 5, 4, 23, 0)) == "ben"
    assert on_call_name(team, berlin(2026, 5, 5, 7, 59)) == "ben"
    assert on_call_name(team, berlin(2026, 5, 5, 8, 0)) == "ana"


def test_handoff_stays_at_nine_local_time_across_the_spring_daylight_saving_change(
    team: Team, people: list[Any]
) -> None:
    """Berlin moves from UTC+1 to UTC+2 on 2026-03-29 at 02:00: the shift that spans the change lasts 23 hours."""
    make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 3, 27))
    before = oncall_for_team(team, berlin(2026, 3, 28, 12, 0))
    assert before is not None
    assert before.user.username == "ben"
    assert before.shift_start == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert before.shift_end == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert before.shift_end - before.shift_start == timedelta(hours=23)
    # The handoff happens at 07:00 UTC now, not 08:00.
    assert on_call_name(team, datetime(2026, 3, 29, 6, 59, tzinfo=UTC)) == "ben"
    assert on_call_name(team, datetime(2026, 3, 29, 7, 0, tzinfo=UTC)) == "cleo"


def test_handoff_stays_at_nine_local_time_across_the_autumn_change(team: Team, people: list[Any]) -> None:
    """Back to UTC+1 on 2026-10-25 at 03:00: that shift lasts 25 hours."""
    make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 10, 23))
    during = oncall_for_team(team, berlin(2026, 10, 25, 2, 30))
    assert during is not None
    assert during.user.username == "ben"
    assert during.shift_start == datetime(2026, 10, 24, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert during.shift_end == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert during.shift_end - during.shift_start == timedelta(hours=25)
    assert on_call_name(team, datetime(2026, 10, 26, 7, 59, tzinfo=UTC)) == "cleo"
    assert on_call_name(team, datetime(2026, 10, 26, 8, 0, tzinfo=UTC)) == "ana"


def test_a_handoff_inside_the_repeated_autumn_hour_happens_once(team: Team, people: list[Any]) -> None:
    """02:30 happens twice on 2026-10-25; the handoff is at the first one (00:30 UTC)."""
    make_rotation(team, people, shift_length_hours=24, handoff_time=time(2, 30), start_date=date(2026, 10, 24))
    assert on_call_name(team, datetime(2026, 10, 25, 0, 29, tzinfo=UTC)) == "ana"
    assert on_call_name(team, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == "ben"
    # The second 02:15 (01:15 UTC) is after the handoff: still ben, not back to ana.
    assert on_call_name(team, datetime(2026, 10, 25, 1, 15, tzinfo=UTC)) == "ben"
    assert on_call_name(team, datetime(2026, 10, 26, 1, 29, tzinfo=UTC)) == "ben"
    assert on_call_name(team, datetime(2026, 10, 26, 1, 30, tzinfo=UTC)) == "cleo"


def test_now_follows_the_frozen_clock_across_the_spring_change(team: Team, people: list[Any]) -> None:
    make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 3, 27))
    with time_machine.travel(datetime(2026, 3, 29, 6, 30, tzinfo=UTC), tick=False):
        assert (oncall_now_all(datetime.now(UTC))[0][1].user.username) == "ben"  # type: ignore[union-attr]
    with time_machine.travel(datetime(2026, 3, 29, 7, 30, tzinfo=UTC), tick=False):
        assert (oncall_now_all(datetime.now(UTC))[0][1].user.username) == "cleo"  # type: ignore[union-attr]


def test_an_override_wins_and_cuts_the_shift_it_interrupts(team: Team, people: list[Any]) -> None:
    ana, ben, cleo = people
    rotation = make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 6, 1))
    dentist = make_override(rotation, cleo, berlin(2026, 6, 1, 14, 0), berlin(2026, 6, 1, 18, 0), "ana at the dentist")

    morning = oncall_for_team(team, berlin(2026, 6, 1, 10, 0))
    assert morning is not None
    assert (morning.user, morning.next_user, morning.overridden) == (ana, cleo, False)
    assert (morning.shift_start, morning.shift_end) == (berlin(2026, 6, 1, 9, 0), dentist.starts_at)

    afternoon = oncall_for_team(team, berlin(2026, 6, 1, 15, 0))
    assert afternoon is not None
    assert (afternoon.user, afternoon.next_user, afternoon.overridden) == (cleo, ana, True)
    assert (afternoon.shift_start, afternoon.shift_end) == (dentist.starts_at, dentist.ends_at)

    evening = oncall_for_team(team, berlin(2026, 6, 1, 19, 0))
    assert evening is not None
    assert (evening.user, evening.next_user, evening.overridden) == (ana, ben, False)
    assert (evening.shift_start, evening.shift_end) == (dentist.ends_at, berlin(2026, 6, 2, 9, 0))


def test_of_overlapping_overrides_the_later_one_wins(team: Team, people: list[Any]) -> None:
    _, ben, cleo = people
    rotation = make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 6, 1))
    make_override(rotation, ben, berlin(2026, 6, 1, 10, 0), berlin(2026, 6, 1, 20, 0))
    make_override(rotation, cleo, berlin(2026, 6, 1, 12, 0), berlin(2026, 6, 1, 13, 0))
    assert on_call_name(team, berlin(2026, 6, 1, 11, 0)) == "ben"
    lunch = oncall_for_team(team, berlin(2026, 6, 1, 12, 30))
    assert lunch is not None
    assert (lunch.user.username, getattr(lunch.next_user, "username", None)) == ("cleo", "ben")
    before = oncall_for_team(team, berlin(2026, 6, 1, 11, 0))
    assert before is not None
    assert before.shift_end == berlin(2026, 6, 1, 12, 0)
    assert on_call_name(team, berlin(2026, 6, 1, 13, 30)) == "ben"
    assert on_call_name(team, berlin(2026, 6, 1, 20, 0)) == "ana"


def test_an_override_that_spans_a_handoff_names_the_next_scheduled_person(team: Team, people: list[Any]) -> None:
    _, ben, cleo = people
    rotation = make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 6, 1))
    make_override(rotation, cleo, berlin(2026, 6, 1, 20, 0), berlin(2026, 6, 2, 12, 0))
    night = oncall_for_team(team, berlin(2026, 6, 2, 10, 0))
    assert night is not None
    assert (night.user, night.next_user, night.overridden) == (cleo, ben, True)


def test_the_escalation_chain_starts_with_who_is_on_call_then_follows_the_rotation(
    team: Team, people: list[Any]
) -> None:
    cleo = people[2]
    rotation = make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 6, 1))
    assert names(escalation_chain(team, berlin(2026, 6, 2, 10, 0))) == ["ben", "cleo", "ana"]
    assert names(escalation_chain(team, berlin(2026, 6, 3, 10, 0))) == ["cleo", "ana", "ben"]
    # Overridden: the stand-in first, then the person the schedule names, then the rest in order.
    make_override(rotation, cleo, berlin(2026, 6, 2, 9, 0), berlin(2026, 6, 2, 18, 0))
    assert names(escalation_chain(team, berlin(2026, 6, 2, 10, 0))) == ["cleo", "ben", "ana"]
    # An outsider covering: they are added in front of the whole rotation.
    dora = make_people("dora")[0]
    make_override(rotation, dora, berlin(2026, 6, 4, 9, 0), berlin(2026, 6, 4, 18, 0))
    assert names(escalation_chain(team, berlin(2026, 6, 4, 10, 0))) == ["dora", "ana", "ben", "cleo"]


def test_a_team_without_rotation_has_nobody_on_call_and_an_empty_chain(team: Team) -> None:
    assert oncall_for_team(team, datetime.now(UTC)) is None
    assert escalation_chain(team, datetime.now(UTC)) == []


def test_a_rotation_without_members_is_not_in_effect(team: Team) -> None:
    make_rotation(team, [], start_date=date(2026, 1, 1))
    assert oncall_for_team(team, berlin(2026, 6, 1, 12, 0)) is None


def test_deactivated_members_are_skipped(team: Team, people: list[Any]) -> None:
    ben = people[1]
    make_rotation(team, people, shift_length_hours=24, start_date=date(2026, 6, 1))
    ben.is_active = False
    ben.save()
    assert [on_call_name(team, berlin(2026, 6, day, 10, 0)) for day in (1, 2, 3)] == ["ana", "cleo", "ana"]
    assert names(escalation_chain(team, berlin(2026, 6, 1, 10, 0))) == ["ana", "cleo"]


def test_a_newer_rotation_takes_over_from_its_start(team: Team, people: list[Any]) -> None:
    ana, ben, cleo = people
    make_rotation(team, [ana, ben], name="Old", shift_length_hours=168, start_date=date(2026, 1, 5))
    new = make_rotation(team, [cleo], name="New", shift_length_hours=168, start_date=date(2026, 2, 4))
    last_old = oncall_for_team(team, berlin(2026, 2, 3, 12, 0))
    assert last_old is not None
    assert last_old.user == ana
    assert last_old.shift_end == berlin(2026, 2, 4, 9, 0)
    assert last_old.next_user == cleo
    first_new = oncall_for_team(team, berlin(2026, 2, 4, 9, 0))
    assert first_new is not None
    assert (first_new.rotation, first_new.user) == (new, cleo)


def test_rotations_in_other_time_zones_hand_over_on_their_own_clock(people: list[Any]) -> None:
    ana, ben, _ = people
    tokyo = make_team("Tokyo")
    make_rotation(tokyo, [ana, ben], time_zone="Asia/Tokyo", start_date=date(2026, 6, 1))
    assert on_call_name(tokyo, datetime(2026, 6, 1, 23, 59, tzinfo=UTC)) == "ana"  # 08:59 in Tokyo
    assert on_call_name(tokyo, datetime(2026, 6, 2, 0, 0, tzinfo=UTC)) == "ben"  # 09:00 in Tokyo


def test_on_call_for_every_team_costs_four_queries(django_assert_num_queries: Any, people: list[Any]) -> None:
    teams = [make_team(f"Team {number}") for number in range(6)]
    for number, team in enumerate(teams[:5]):
        rotation = make_rotation(team, people, start_date=date(2026, 1, number + 1))
        make_override(rotation, people[0], berlin(2026, 6, 1, 0, 0), berlin(2026, 6, 2, 0, 0))
    with django_assert_num_queries(4):
        answers = oncall_now_all(berlin(2026, 6, 1, 12, 0))
    assert [team.name for team, _ in answers] == [team.name for team in teams]
    assert [oncall is not None for _, oncall in answers] == [True] * 5 + [False]
    assert all(oncall.overridden for _, oncall in answers[:5] if oncall)


def test_naive_times_are_refused(team: Team) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        oncall_for_team(team, datetime(2026, 6, 1, 12, 0))
