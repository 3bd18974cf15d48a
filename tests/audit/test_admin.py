"""The admin shows admins an object's audit trail behind its History button, and the whole trail read-only;
agents keep Django's history and do not see the trail."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client

from tests.conftest import page_text
from tests.factories import ServiceFactory, make_ticket

pytestmark = pytest.mark.django_db


def test_an_admin_reads_a_tickets_audit_trail_behind_the_history_button(operator: Client, as_agent, requester):
    ticket = make_ticket(requester, title="Mouse is broken")
    ticket.refresh_from_db()
    response = as_agent.patch(
        f"/api/v1/tickets/{ticket.pk}/", {"priority": "high"}, format="json", HTTP_IF_MATCH=ticket.etag
    )
    assert response.status_code == 200, response.content
    page = operator.get(f"/admin/itsm/ticket/{ticket.pk}/history/")
    assert page.status_code == 200
    text = page_text(page)
    assert "Audit log: #" in text
    assert "alice" in text  # the agent's change through the API
    assert "medium" in text
    assert "high" in text
    assert operator.get(f"/admin/itsm/ticket/{ticket.pk}/auditlog/").status_code == 200


def test_an_agent_gets_djangos_history_and_not_the_trail(agent, requester):
    client = Client()
    client.force_login(agent)
    ticket = make_ticket(requester)
    page = client.get(f"/admin/itsm/ticket/{ticket.pk}/history/")
    assert page.status_code == 200
    assert "Audit log" not in page_text(page)
    assert client.get(f"/admin/itsm/ticket/{ticket.pk}/auditlog/").status_code == 403
    assert client.get("/admin/auditlog/logentry/").status_code == 403


def test_admins_list_the_whole_trail_read_only_deleted_objects_included(operator: Client):
    service = ServiceFactory.create(name="Printers", slug="printers")
    service_id = service.pk
    service.delete()
    entry = LogEntry.objects.get(content_type__model="service", object_id=service_id, action=LogEntry.Action.DELETE)
    listing = operator.get("/admin/auditlog/logentry/?q=Printers")
    assert listing.status_code == 200
    assert "Printers" in page_text(listing)
    assert operator.get(f"/admin/auditlog/logentry/{entry.pk}/change/").status_code == 200
    assert operator.post(f"/admin/auditlog/logentry/{entry.pk}/delete/").status_code == 403
    assert operator.get("/admin/auditlog/logentry/add/").status_code == 403
