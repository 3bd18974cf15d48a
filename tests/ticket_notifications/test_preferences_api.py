"""/api/v1/me/notification-preferences/: each user reads and changes what they hear about tickets by e-mail."""

from __future__ import annotations

from typing import Any

import pytest

from itsm.services.ticket_notifications import EVENTS

URL = "/api/v1/me/notification-preferences/"
pytestmark = pytest.mark.django_db


def test_a_user_starts_with_every_ticket_e_mail_on(as_requester, django_assert_max_num_queries: Any):
    with django_assert_max_num_queries(4):
        response = as_requester.get(URL)
    assert response.status_code == 200
    assert response.json() == {"email": True, "events": dict.fromkeys(EVENTS, True)}


def test_a_user_switches_an_event_off_and_all_mail_off_and_on_again(as_requester, as_agent):
    response = as_requester.patch(URL, {"events": {"agent_replied": False}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["events"]["agent_replied"] is False
    assert response.json()["events"]["resolved"] is True
    assert as_requester.put(URL, {"email": False}, format="json").json()["email"] is False
    again = as_requester.patch(URL, {"email": True}, format="json").json()
    assert again["email"] is True
    assert again["events"]["agent_replied"] is False  # what was not named stays as chosen
    assert as_agent.get(URL).json()["events"]["agent_replied"] is True  # each user's own


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": {"no_such_event": True}}, "events"),
        ({"events": {"resolved": "maybe"}}, "events"),
        ({"email": "yes"}, "email"),
        ({"events": ["resolved"]}, "events"),
    ],
)
def test_a_bad_choice_is_a_400_naming_the_field_and_changes_nothing(as_requester, body, field):
    response = as_requester.patch(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert as_requester.get(URL).json() == {"email": True, "events": dict.fromkeys(EVENTS, True)}


def test_without_a_token_it_is_a_401(anonymous):
    assert anonymous.get(URL).status_code == 401
