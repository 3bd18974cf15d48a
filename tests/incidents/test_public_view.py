"""Publishing an incident: private by default, public under a public title of its own, set by staff in the API and
the admin; requesters read public incidents only, in their public view, and the tickets they reported hear of the
incident by its public title alone."""

from __future__ import annotations

from typing import Any

import pytest

from itsm.models import Comment, Incident
from itsm.models.incidents import PUBLIC_FIELDS
from itsm.services.incidents import incident_create, incident_transition
from tests.etags import if_match
from tests.factories import ServiceFactory, make_ticket

URL = "/api/v1/incidents/"
pytestmark = pytest.mark.django_db


def test_an_incident_is_private_until_staff_publish_it_under_a_public_title(as_agent, as_requester):
    created = as_agent.post(URL, {"title": "HighErrorRate api-7 10.1.2.3", "severity": "high"}, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["public"], created.json()["public_title"]) == (False, "")
    incident_id = created.json()["id"]
    assert as_requester.get(URL).json()["results"] == []
    assert as_requester.get(f"{URL}{incident_id}/").status_code == 404
    assert as_requester.get(f"{URL}{incident_id}/timeline/").status_code == 404

    published = as_agent.patch(
        f"{URL}{incident_id}/",
        {"public": True, "public_title": "  Some requests fail  "},
        format="json",
        **if_match(Incident, incident_id),
    )
    assert published.status_code == 200, published.content
    assert (published.json()["public"], published.json()["public_title"]) == (True, "Some requests fail")
    shown = as_requester.get(f"{URL}{incident_id}/").json()
    assert set(shown) == set(PUBLIC_FIELDS)
    assert shown["public_title"] == "Some requests fail"


def test_a_public_incident_needs_a_public_title_without_an_e_mail_address(as_agent, agent):
    refused = as_agent.post(URL, {"title": "Disk full", "public": True}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()) == ["public_title"]
    incident = incident_create(actor=agent, title="Disk full")
    for body in ({"public": True}, {"public": True, "public_title": "   "}, {"public_title": "Mail ops@example.com"}):
        response = as_agent.patch(f"{URL}{incident.pk}/", body, format="json", **if_match(incident))
        assert response.status_code == 400, body
        assert list(response.json()) == ["public_title"], body
    assert Incident.objects.get().public is False


def test_requesters_cannot_publish(as_requester, agent):
    incident = incident_create(actor=agent, title="Disk full", public=True, public_title="Slow mail")
    response = as_requester.patch(f"{URL}{incident.pk}/", {"public": False}, format="json")
    assert response.status_code == 403
    assert Incident.objects.get().public is True


def test_publishing_is_on_the_timeline(as_agent, agent):
    incident = incident_create(actor=agent, title="Disk full")
    as_agent.patch(
        f"{URL}{incident.pk}/", {"public": True, "public_title": "Slow mail"}, format="json", **if_match(incident)
    )
    changes = [
        (event["field"], event["new_value"])
        for event in as_agent.get(f"{URL}{incident.pk}/timeline/").json()["results"]
        if event["kind"] == "changed"
    ]
    assert sorted(changes) == [("public", "True"), ("public_title", "Slow mail")]


@pytest.mark.parametrize("persona", ["as_requester", "as_agent"])
def test_the_list_does_not_grow_its_queries_with_the_incidents(request, persona, agent, django_assert_max_num_queries):
    service = ServiceFactory.create()
    for n in range(10):
        incident_create(
            actor=agent, title=f"INTERNAL {n}", services=[service], public=n % 2 == 0, public_title=f"Public {n}"
        )
    client = request.getfixturevalue(persona)
    with django_assert_max_num_queries(6):
        response = client.get(URL)
    assert len(response.json()["results"]) == (5 if persona == "as_requester" else 10)


def test_a_resolved_incident_tells_linked_tickets_only_its_public_title(agent, requester):
    private_ticket, public_ticket = make_ticket(requester), make_ticket(requester)
    private = incident_create(actor=agent, title="INTERNAL db-1 10.0.0.5 down", linked_tickets=[private_ticket])
    public = incident_create(
        actor=agent,
        title="INTERNAL api-7 5xx",
        linked_tickets=[public_ticket],
        public=True,
        public_title="Some requests fail",
    )
    for incident in (private, public):
        incident_transition(incident_id=incident.pk, actor=agent, to="resolved")
    told = {comment.ticket_id: comment.body for comment in Comment.objects.filter(author=agent)}
    assert told[private_ticket.pk] == f"The incident INC-{private.pk} affecting this ticket has been resolved."
    assert told[public_ticket.pk] == (
        f"The incident INC-{public.pk} (Some requests fail) affecting this ticket has been resolved."
    )


def test_staff_publish_an_incident_in_the_admin(operator: Any, agent: Any) -> None:
    incident = incident_create(actor=agent, title="INTERNAL api-7 5xx", severity="low")
    url = f"/admin/itsm/incident/{incident.pk}/change/"
    form = {"title": incident.title, "summary": "", "severity": "low", "public": "on", "public_title": ""}
    refused = operator.post(url, form)
    assert refused.status_code == 200
    assert "needs a public title" in refused.content.decode()
    saved = operator.post(url, {**form, "public_title": "Some requests fail"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    incident.refresh_from_db()
    assert (incident.public, incident.public_title) == (True, "Some requests fail")
