"""No lost updates through the API (docs/api.md#concurrency-etag-and-if-match): every versioned resource answers
with its ETag, refuses a write without If-Match (428) or with a stale one (412, the current ETag, nothing written),
and takes a fresh one with a new ETag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from itsm.models import Event, Incident, MaintenanceWindow, NotificationChannel, Postmortem, Service, Team, Ticket
from itsm.services.incidents import incident_create, postmortem_save
from itsm.services.maintenance import maintenance_create
from tests.factories import ServiceFactory, TeamFactory, make_ticket, make_user


@dataclass(frozen=True)
class Write:
    """One write to one object: who makes it, where the object is read, and the request."""

    persona: str
    read: str
    method: str
    url: str
    body: dict[str, Any]
    noun: str
    # What someone else changes first (the same write if None; a move asked twice is a no-op, so an edit).
    other: tuple[str, str, dict[str, Any]] | None = None


def _incident(world: dict[str, Any]) -> Incident:
    return incident_create(actor=world["agent"], title="Checkout returns 502", severity="medium")


def _window(world: dict[str, Any]) -> MaintenanceWindow:
    start = timezone.now() + timedelta(days=2)
    return maintenance_create(
        actor=world["agent"], title="Upgrade", starts_at=start, ends_at=start + timedelta(hours=1), checks=[]
    )


def _channel(world: dict[str, Any]) -> NotificationChannel:
    return NotificationChannel.objects.create(
        user=world["agent"], channel="webhook", target="https://hooks.example.com/itsm"
    )


def incident_edit(world: dict[str, Any]) -> Write:
    url = f"/api/v1/incidents/{_incident(world).pk}/"
    return Write("agent", url, "patch", url, {"title": "Checkout is slow"}, "incident")


def incident_move(world: dict[str, Any]) -> Write:
    url = f"/api/v1/incidents/{_incident(world).pk}/"
    edit = ("patch", url, {"title": "Checkout is slow"})
    return Write("agent", url, "post", f"{url}transition/", {"to": "acknowledged"}, "incident", edit)


def postmortem_edit(world: dict[str, Any]) -> Write:
    incident = _incident(world)
    postmortem_save(incident_id=incident.pk, actor=world["agent"], data={"summary": "Disk full"})
    url = f"/api/v1/incidents/{incident.pk}/postmortem/"
    return Write("agent", url, "put", url, {"root_cause": "No alert on disk usage"}, "post-mortem")


def window_edit(world: dict[str, Any]) -> Write:
    url = f"/api/v1/maintenance-windows/{_window(world).pk}/"
    return Write("agent", url, "patch", url, {"title": "Upgrade PostgreSQL"}, "maintenance window")


def window_move(world: dict[str, Any]) -> Write:
    url = f"/api/v1/maintenance-windows/{_window(world).pk}/"
    edit = ("patch", url, {"title": "Upgrade PostgreSQL"})
    return Write("agent", url, "post", f"{url}transition/", {"to": "cancelled"}, "maintenance window", edit)


def service_edit(world: dict[str, Any]) -> Write:
    url = f"/api/v1/services/{ServiceFactory.create().pk}/"
    return Write("admin", url, "patch", url, {"description": "Remote access"}, "service")


def team_edit(world: dict[str, Any]) -> Write:
    url = f"/api/v1/teams/{TeamFactory.create().pk}/"
    return Write("admin", url, "patch", url, {"name": "Platform"}, "team")


def channel_edit(world: dict[str, Any]) -> Write:
    url = f"/api/v1/notification-channels/{_channel(world).pk}/"
    return Write("agent", url, "patch", url, {"enabled": False}, "notification channel")


def channel_rotation(world: dict[str, Any]) -> Write:
    url = f"/api/v1/notification-channels/{_channel(world).pk}/"
    return Write("agent", url, "post", f"{url}rotate-secret/", {"window_hours": 1}, "notification channel")


def ticket_edit(world: dict[str, Any]) -> Write:
    url = f"/api/v1/tickets/{make_ticket(world['requester']).pk}/"
    return Write("agent", url, "patch", url, {"priority": "high"}, "ticket")


WRITES: list[Callable[[dict[str, Any]], Write]] = [
    incident_edit,
    incident_move,
    postmortem_edit,
    window_edit,
    window_move,
    service_edit,
    team_edit,
    channel_edit,
    channel_rotation,
    ticket_edit,
]


@pytest.fixture
def world(agent: Any, admin: Any, requester: Any, as_agent: APIClient, as_admin: APIClient) -> dict[str, Any]:
    return {"agent": agent, "admin": admin, "requester": requester, "clients": {"agent": as_agent, "admin": as_admin}}


@pytest.fixture
def allow_hooks(settings: Any, monkeypatch: Any) -> None:
    """hooks.example.com does not resolve here: the channels' URL check is not what these tests are about."""
    monkeypatch.setattr("itsm.notifiers.ssrf.resolve", lambda url: None)


@pytest.mark.parametrize("make", WRITES, ids=[make.__name__ for make in WRITES])
def test_a_read_gives_the_etag_a_stale_write_is_412_and_a_fresh_one_200_with_a_new_etag(
    make: Callable[[dict[str, Any]], Write], world: dict[str, Any], allow_hooks: None
) -> None:
    write = make(world)
    client = world["clients"][write.persona]
    first = client.get(write.read)
    etag = first.headers["ETag"]
    assert first.status_code == 200
    assert etag.startswith('"')
    send = getattr(client, write.method)

    # Someone else writes first: the ETag read is stale now.
    method, url, body = write.other or (write.method, write.url, write.body)
    other = getattr(client, method)(url, body, format="json", HTTP_IF_MATCH=etag)
    assert other.status_code == 200, other.content
    current = client.get(write.read).headers["ETag"]
    assert current != etag
    assert other.headers["ETag"] == current  # the answer's ETag is the version that write wrote

    stale = send(write.url, write.body, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412, stale.content
    assert stale.headers["ETag"] == current
    assert stale.json() == {
        "detail": f"The {write.noun} was changed by someone else: fetch it again and reapply your change.",
        "code": "precondition_failed",
    }
    assert client.get(write.read).headers["ETag"] == current  # nothing written

    missing = send(write.url, write.body, format="json")
    assert missing.status_code == 428, missing.content
    assert missing.json()["code"] == "precondition_required"


def test_two_agents_edit_one_incident_and_the_second_gets_412_with_nothing_of_its_change_written(
    agent: Any, client_for: Callable[[Any], APIClient]
) -> None:
    alice, bob = client_for(agent), client_for(make_user("bob", "agent"))
    incident = incident_create(actor=agent, title="Mail is slow", severity="medium")
    url = f"/api/v1/incidents/{incident.pk}/"
    read_by_alice, read_by_bob = alice.get(url), bob.get(url)
    assert read_by_alice.headers["ETag"] == read_by_bob.headers["ETag"] == f'"{incident.pk}-1"'

    saved = alice.patch(url, {"title": "Mail relay disk full"}, format="json", HTTP_IF_MATCH=read_by_alice["ETag"])
    assert saved.status_code == 200
    assert saved.headers["ETag"] == f'"{incident.pk}-2"'

    refused = bob.patch(
        url, {"severity": "critical", "summary": "Bob's view"}, format="json", HTTP_IF_MATCH=read_by_bob["ETag"]
    )
    assert refused.status_code == 412
    assert refused.headers["ETag"] == f'"{incident.pk}-2"'
    stored = Incident.objects.get(pk=incident.pk)
    assert (stored.title, stored.severity, stored.summary, stored.version) == ("Mail relay disk full", "medium", "", 2)
    assert not Event.objects.filter(incident=incident, kind="changed", field__in=["severity", "summary"]).exists()

    # Bob reads again and reapplies his change on top of Alice's.
    again = bob.get(url)
    reapplied = bob.patch(url, {"severity": "critical"}, format="json", HTTP_IF_MATCH=again["ETag"])
    assert reapplied.status_code == 200
    assert (reapplied.json()["title"], reapplied.json()["severity"]) == ("Mail relay disk full", "critical")


def test_an_etag_of_another_object_or_garbage_is_412_with_the_current_one(as_agent: APIClient, agent: Any) -> None:
    first = incident_create(actor=agent, title="One", severity="low")
    second = incident_create(actor=agent, title="Two", severity="low")
    url = f"/api/v1/incidents/{first.pk}/"
    for header in (second.etag, "garbage", '"1-x"'):
        response = as_agent.patch(url, {"title": "x"}, format="json", HTTP_IF_MATCH=header)
        assert response.status_code == 412, header
        assert response.headers["ETag"] == first.etag
    assert Incident.objects.get(pk=first.pk).title == "One"


def test_the_first_postmortem_needs_no_if_match_and_every_later_write_does(as_agent: APIClient, agent: Any) -> None:
    incident = incident_create(actor=agent, title="Disk full", severity="low")
    url = f"/api/v1/incidents/{incident.pk}/postmortem/"
    assert "ETag" not in as_agent.get(url).headers  # nothing written yet
    created = as_agent.put(url, {"summary": "The disk filled up"}, format="json")
    assert created.status_code == 200
    postmortem = Postmortem.objects.get(incident=incident)
    assert created.headers["ETag"] == postmortem.etag
    assert as_agent.put(url, {"lessons": "Alert earlier"}, format="json").status_code == 428
    assert (
        as_agent.put(url, {"lessons": "Alert earlier"}, format="json", HTTP_IF_MATCH=postmortem.etag).status_code == 200
    )


def test_requesters_get_no_etag_for_the_public_view_of_an_incident(as_requester: APIClient, agent: Any) -> None:
    incident = incident_create(actor=agent, title="Disk full", severity="low", public=True, public_title="Slow mail")
    response = as_requester.get(f"/api/v1/incidents/{incident.pk}/")
    assert response.status_code == 200
    assert "ETag" not in response.headers


def test_an_internal_note_does_not_change_a_tickets_etag(as_agent: APIClient, requester: Any) -> None:
    ticket = make_ticket(requester)
    before = as_agent.get(f"/api/v1/tickets/{ticket.pk}/").headers["ETag"]
    as_agent.post(f"/api/v1/tickets/{ticket.pk}/comments/", {"body": "between us", "internal": True}, format="json")
    assert as_agent.get(f"/api/v1/tickets/{ticket.pk}/").headers["ETag"] == before == Ticket.objects.get().etag


def test_models_without_a_service_are_written_under_the_lock(as_admin: APIClient) -> None:
    team = TeamFactory.create()
    url = f"/api/v1/teams/{team.pk}/"
    response = as_admin.patch(url, {"name": "Platform"}, format="json", HTTP_IF_MATCH=team.etag)
    assert response.status_code == 200
    assert (Team.objects.get().name, Team.objects.get().version) == ("Platform", 2)
    assert Service.objects.count() == 0
    assert MaintenanceWindow.objects.count() == 0
