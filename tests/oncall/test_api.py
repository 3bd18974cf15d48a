"""GET /api/v1/oncall/: every signed-in user sees who is on call for each team, now or at `?at=`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.oncall.conftest import make_override, make_people, make_rotation, make_team

pytestmark = pytest.mark.django_db

URL = "/api/v1/oncall/"


@pytest.fixture
def platform() -> Any:
    team = make_team("Platform")
    ana, ben, cleo = make_people("ana", "ben", "cleo")
    rotation = make_rotation(team, [ana, ben, cleo], shift_length_hours=24, start_date=date(2026, 3, 27))
    make_override(rotation, ana, datetime(2026, 4, 1, 12, 0, tzinfo=UTC), datetime(2026, 4, 1, 14, 0, tzinfo=UTC))
    return team


def test_anonymous_users_are_refused(anonymous: APIClient) -> None:
    assert anonymous.get(URL).status_code == 401


def test_a_requester_sees_who_is_on_call_now_and_next(as_requester: APIClient, platform: Any) -> None:
    make_team("Databases")  # no rotation
    with time_machine.travel(datetime(2026, 3, 28, 10, 0, tzinfo=UTC), tick=False):
        response = as_requester.get(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["at"] == "2026-03-28T10:00:00Z"
    assert body["next"] is None
    databases, platform_row = body["results"]
    assert databases["team"]["name"] == "Databases"
    assert databases["on_call"] is None
    assert databases["rotation"] is None
    assert platform_row["team"] == {"id": platform.pk, "name": "Platform", "slug": "platform"}
    assert platform_row["rotation"]["time_zone"] == "Europe/Berlin"
    assert platform_row["on_call"]["username"] == "ben"
    assert platform_row["next_on_call"]["username"] == "cleo"
    assert platform_row["shift_start"] == "2026-03-28T08:00:00Z"
    assert platform_row["shift_end"] == "2026-03-29T07:00:00Z"  # 09:00 summer time, after the change
    assert platform_row["overridden"] is False


@pytest.mark.parametrize(
    ("at", "expected", "overridden"),
    [
        ("2026-03-29T06:59:00Z", "ben", False),
        ("2026-03-29T07:00:00Z", "cleo", False),
        ("2026-03-29T09:00:00+02:00", "cleo", False),
        ("2026-04-01T12:30:00Z", "ana", True),
        ("2026-04-01T14:30:00", "cleo", False),  # no offset: UTC
    ],
)
def test_at_asks_about_any_moment(as_agent: APIClient, platform: Any, at: str, expected: str, overridden: bool) -> None:
    response = as_agent.get(URL, {"at": at})
    assert response.status_code == 200, response.content
    row = response.json()["results"][0]
    assert (row["on_call"]["username"], row["overridden"]) == (expected, overridden)


def test_an_unencoded_plus_in_at_is_understood(as_agent: APIClient, platform: Any) -> None:
    response = as_agent.get(f"{URL}?at=2026-03-29T09:00:00+02:00")
    assert response.status_code == 200, response.content
    assert response.json()["at"] == "2026-03-29T07:00:00Z"
    assert response.json()["results"][0]["on_call"]["username"] == "cleo"


@pytest.mark.parametrize(
    "at", ["yesterday", "2026-13-01T00:00:00Z", "2026-03-29T25:00", "1711900000", "2026-03-29T09:00:00+99:00"]
)
def test_a_malformed_at_is_a_400_naming_the_parameter(as_agent: APIClient, platform: Any, at: str) -> None:
    response = as_agent.get(f"{URL}?at={quote(at)}")
    assert response.status_code == 400, response.content
    assert "at" in response.json()


def test_team_filters_to_one_team(as_agent: APIClient, platform: Any) -> None:
    other = make_team("Databases")
    response = as_agent.get(URL, {"team": other.pk})
    assert [row["team"]["name"] for row in response.json()["results"]] == ["Databases"]
    assert as_agent.get(URL, {"team": "abc"}).status_code == 400
    assert as_agent.get(URL, {"team": 999999}).json()["results"] == []


def test_the_list_costs_the_same_queries_for_one_team_or_many(
    as_agent: APIClient, django_assert_max_num_queries: Any
) -> None:
    people = make_people("ana", "ben", "cleo")
    for number in range(12):
        team = make_team(f"Team {number:02}")
        rotation = make_rotation(team, people, start_date=date(2026, 1, 1))
        make_override(rotation, people[1], datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC))
    # Token and user (2), the page of teams, their rotations, members and overrides (4): none per team.
    with django_assert_max_num_queries(6):
        response = as_agent.get(URL, {"at": "2026-06-01T12:00:00Z", "page_size": "50"})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 12
    assert all(row["on_call"]["username"] == "ben" and row["overridden"] for row in rows)


def test_the_list_is_paginated(as_agent: APIClient) -> None:
    for number in range(3):
        make_team(f"Team {number}")
    first = as_agent.get(URL, {"page_size": 2}).json()
    assert len(first["results"]) == 2
    assert first["next"] is not None
    assert len(as_agent.get(first["next"]).json()["results"]) == 1
