"""Rotations and overrides are edited in the admin, with clear errors for what cannot work."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.test import Client

from itsm.models import Override, Rotation
from tests.oncall.conftest import make_override, make_people, make_rotation, make_team

pytestmark = pytest.mark.django_db

ROTATIONS = "/admin/itsm/rotation/"
OVERRIDES = "/admin/itsm/override/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rotation_form(team: Any, members: list[Any], **fields: Any) -> dict[str, Any]:
    data = {
        "team": team.pk,
        "name": "Primary",
        "shift_length_hours": 168,
        "handoff_time": "09:00",
        "time_zone": "Europe/Berlin",
        "start_date": "2026-06-01",
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "overrides-TOTAL_FORMS": "0",
        "overrides-INITIAL_FORMS": "0",
        "overrides-MIN_NUM_FORMS": "0",
        "overrides-MAX_NUM_FORMS": "1000",
    }
    for number, user in enumerate(members):
        data[f"memberships-{number}-position"] = str(number)
        data[f"memberships-{number}-user"] = str(user.pk)
    data.update(fields)
    return data


def test_an_admin_creates_a_rotation_with_ordered_members(admin: Any) -> None:
    team = make_team()
    ana, ben = make_people("ana", "ben")
    response = _client(admin).post(ROTATIONS + "add/", _rotation_form(team, [ben, ana]))
    assert response.status_code == 302, response.content.decode()[:3000]
    rotation = Rotation.objects.get()
    assert [m.user.username for m in rotation.memberships.order_by("position")] == ["ben", "ana"]
    assert rotation.time_zone == "Europe/Berlin"


def test_a_rotation_without_members_is_refused(admin: Any) -> None:
    response = _client(admin).post(ROTATIONS + "add/", _rotation_form(make_team(), []))
    assert response.status_code == 200
    assert "A rotation needs at least one member" in response.content.decode()
    assert not Rotation.objects.exists()


def test_a_zero_shift_length_is_refused(admin: Any) -> None:
    ana = make_people("ana")
    response = _client(admin).post(ROTATIONS + "add/", _rotation_form(make_team(), ana, shift_length_hours=0))
    assert response.status_code == 200
    assert "A shift must last at least one hour" in response.content.decode()
    assert not Rotation.objects.exists()


def test_an_unknown_time_zone_is_refused(admin: Any) -> None:
    ana = make_people("ana")
    response = _client(admin).post(ROTATIONS + "add/", _rotation_form(make_team(), ana, time_zone="Mars/Olympus"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_an_override_ending_before_it_starts_is_refused(agent: Any) -> None:
    rotation = make_rotation(make_team(), make_people("ana"), start_date=date(2026, 6, 1))
    response = _client(agent).post(
        OVERRIDES + "add/",
        {
            "rotation": rotation.pk,
            "user": agent.pk,
            "starts_at_0": "2026-06-02",
            "starts_at_1": "18:00",
            "ends_at_0": "2026-06-02",
            "ends_at_1": "08:00",
            "note": "swap",
        },
    )
    assert response.status_code == 200
    assert "An override must end after it starts." in response.content.decode()
    assert not Override.objects.exists()


def test_agents_add_overrides_and_see_rotations_but_do_not_edit_them(agent: Any) -> None:
    rotation = make_rotation(make_team(), make_people("ana"), start_date=date(2026, 6, 1))
    client = _client(agent)
    response = client.post(
        OVERRIDES + "add/",
        {
            "rotation": rotation.pk,
            "user": agent.pk,
            "starts_at_0": "2026-06-02",
            "starts_at_1": "08:00",
            "ends_at_0": "2026-06-02",
            "ends_at_1": "18:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Override.objects.filter(user=agent).exists()
    assert client.get(ROTATIONS).status_code == 200
    page = client.get(f"{ROTATIONS}{rotation.pk}/change/")
    assert page.status_code == 200
    assert "on call for the team now" in page.content.decode().lower()
    assert client.post(ROTATIONS + "add/", _rotation_form(make_team("Other"), [agent])).status_code == 403


def test_the_rotation_pages_load_with_members_and_overrides(admin: Any) -> None:
    people = make_people("ana", "ben")
    rotation = make_rotation(make_team(), people, start_date=date(2020, 1, 1))
    make_override(rotation, people[1], datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC))
    client = _client(admin)
    listing = client.get(ROTATIONS)
    assert listing.status_code == 200
    assert "Primary" in listing.content.decode()
    change = client.get(f"{ROTATIONS}{rotation.pk}/change/")
    assert change.status_code == 200
    assert "ben" in change.content.decode()
    assert client.get(OVERRIDES).status_code == 200
