"""Erasing someone of the staff: an agent who was on call, worked tickets and commanded an incident. Their name
leaves the tickets, incidents, teams and the on-call schedule as the API shows them; their work stays theirs under
the pseudonym."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from itsm.models import Event, Incident, Rotation, RotationMember, Team
from itsm.services.incidents import incident_create, incident_update
from itsm.services.privacy import personal_data_erase
from itsm.services.tickets import comment_create, ticket_update
from itsm.services.users import user_upsert
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db
TRACES = ("Quentin Marsh", "qmarsh", "q.marsh@example.com")


def test_an_erased_agents_name_leaves_tickets_incidents_teams_and_on_call(requester, admin, as_admin):
    agent, _ = user_upsert(username="qmarsh", role="agent", password=None, email="q.marsh@example.com")
    agent.first_name, agent.last_name = "Quentin", "Marsh"
    agent.save()
    team = Team.objects.create(name="Networks", slug="networks")
    team.members.add(agent)
    rotation = Rotation.objects.create(team=team, name="primary", start_date=datetime.date(2026, 1, 5))
    RotationMember.objects.create(rotation=rotation, user=agent, position=0)
    ticket = make_ticket(requester, title="Wi-Fi down")
    ticket_update(ticket_id=ticket.pk, actor=admin, expected_version=None, changes={"assignee": agent})
    comment_create(ticket_id=ticket.pk, author=agent, body="Quentin Marsh here, looking.")
    incident = incident_create(actor=agent, title="Core switch down", summary="Paged qmarsh at 02:00")
    incident_update(incident_id=incident.pk, actor=admin, changes={"commander": agent})

    def traces(page: str) -> list[str]:
        response: Any = as_admin.get(page)
        assert response.status_code == 200, (page, response.status_code)
        text = response.content.decode().lower()
        return [trace for trace in TRACES if trace.lower() in text]

    assert "Quentin Marsh" in traces("/api/v1/oncall/")
    assert "Quentin Marsh" in traces(f"/api/v1/tickets/{ticket.pk}/comments/")
    assert "qmarsh" in traces(f"/api/v1/incidents/{incident.pk}/")

    personal_data_erase(user=agent, comments="keep", source="command", actor=admin)

    pages = [
        f"/api/v1/tickets/{ticket.pk}/",
        f"/api/v1/tickets/{ticket.pk}/comments/",
        f"/api/v1/tickets/{ticket.pk}/events/",
        f"/api/v1/incidents/{incident.pk}/",
        f"/api/v1/incidents/{incident.pk}/timeline/",
        "/api/v1/teams/",
        "/api/v1/oncall/",
        "/api/v1/audit/?page_size=200",
    ]
    for page in pages:
        assert traces(page) == [], page
    # The work stays theirs, under the pseudonym.
    incident.refresh_from_db()
    assert incident.commander_id == agent.pk
    assert Incident.objects.get(pk=incident.pk).summary == f"Paged erased-{agent.pk} at 02:00"
    assert Event.objects.filter(ticket=ticket, actor=agent).exists()
    assert list(team.members.all()) == [agent]  # teams and rotations are the operator's to change (the runbook)
