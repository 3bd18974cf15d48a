"""Public status updates of an incident: posted by agents on the timeline with `public: true`, the latest one
shown on the status page with its time; internal notes and e-mail addresses never are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from itsm.models import Event, Incident, Service
from itsm.services.incidents import incident_create, incident_transition

URL = "/api/v1/incidents/"


@pytest.fixture
def outage(agent: Any) -> Incident:
    api = Service.objects.create(name="API", slug="api")
    return incident_create(
        actor=agent,
        title="INTERNAL 5xx on api-3",
        severity="critical",
        services=[api],
        public=True,
        public_title="API answers 502",
    )


def timeline(incident: Incident) -> str:
    return f"{URL}{incident.pk}/timeline/"


def post(client: Any, incident: Incident, body: str, public: bool) -> Any:
    return client.post(timeline(incident), {"body": body, "public": public}, format="json")


def test_an_agent_posts_a_public_update_that_is_on_the_timeline_as_such(as_agent, outage, agent):
    response = post(as_agent, outage, "We are rolling back the last release.", public=True)
    assert response.status_code == 201, response.data
    assert response.data["kind"] == "status_update"
    assert response.data["note"] == "We are rolling back the last release."
    assert response.data["actor"] == agent.pk
    kinds = [event["kind"] for event in as_agent.get(timeline(outage)).json()["results"]]
    assert kinds[-1] == "status_update"


def test_a_note_without_public_stays_an_internal_note(as_agent, outage):
    response = as_agent.post(timeline(outage), {"body": "Restarted pods"}, format="json")
    assert response.data["kind"] == "note"


def test_a_public_update_naming_an_e_mail_address_is_a_400_naming_the_body(as_agent, outage):
    response = post(as_agent, outage, "Write to bob.smith@example.com for details", public=True)
    assert response.status_code == 400
    assert "e-mail" in response.json()["body"][0]
    assert not Event.objects.filter(kind=Event.Kind.STATUS_UPDATE).exists()


@pytest.mark.parametrize("body", ["", "   "])
def test_an_empty_public_update_is_a_400(as_agent, outage, body):
    response = post(as_agent, outage, body, public=True)
    assert response.status_code == 400
    assert "body" in response.json()


def test_a_requester_cannot_post_a_public_update(as_requester, outage):
    assert post(as_requester, outage, "All good", public=True).status_code == 403


def test_the_status_page_shows_the_latest_public_update_with_its_time_and_nothing_internal(as_agent, outage, agent):
    t0 = timezone.now().replace(microsecond=0)
    with time_machine.travel(t0 - timedelta(minutes=20), tick=False):
        post(as_agent, outage, "We are investigating.", public=True)
    with time_machine.travel(t0 - timedelta(minutes=10), tick=False):
        post(as_agent, outage, "INTERNAL: db pool exhausted, page carol@example.com", public=False)
    with time_machine.travel(t0 - timedelta(minutes=5), tick=False):
        post(as_agent, outage, "A fix is rolling out; errors are dropping.", public=True)
    with time_machine.travel(t0 - timedelta(minutes=1), tick=False):
        post(as_agent, outage, "INTERNAL: the rollout is at 50 %", public=False)

    data = Client().get("/status.json").json()
    [shown] = data["incidents"]
    assert shown["latest_update"] == {
        "body": "A fix is rolling out; errors are dropping.",
        "at": (t0 - timedelta(minutes=5)).isoformat(),
    }
    html = Client().get("/status/").content.decode()
    assert "A fix is rolling out; errors are dropping." in html
    assert f"{(t0 - timedelta(minutes=5)):%Y-%m-%d %H:%M} UTC" in html
    for body in (str(data), html):
        assert "INTERNAL" not in body
        assert "@example.com" not in body
        assert "We are investigating." not in body  # only the latest update
        assert agent.username not in body


def test_an_incident_without_a_public_update_shows_none(outage):
    assert Client().get("/status.json").json()["incidents"][0]["latest_update"] is None
    html = Client().get("/status/").content.decode()
    assert "API answers 502" in html
    assert 'class="update"' not in html


def test_a_resolved_incident_and_its_updates_leave_the_page(as_agent, outage, agent):
    post(as_agent, outage, "Fixed, monitoring.", public=True)
    incident_transition(incident_id=outage.pk, actor=agent, to="resolved")
    data = Client().get("/status.json").json()
    assert data["incidents"] == []
    assert "Fixed, monitoring." not in Client().get("/status/").content.decode()


def test_the_page_does_not_grow_its_queries_with_incidents_and_updates(as_agent, agent, django_assert_max_num_queries):
    for n in range(8):
        incident = incident_create(
            actor=agent, title=f"INTERNAL {n}", severity="high", public=True, public_title=f"Problem {n}"
        )
        for step in range(3):
            post(as_agent, incident, f"Update {step} of problem {n}", public=True)
    with django_assert_max_num_queries(6):
        data = Client().get("/status.json").json()
    assert {i["title"]: i["latest_update"]["body"] for i in data["incidents"]}["Problem 3"] == "Update 2 of problem 3"
