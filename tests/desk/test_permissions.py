"""Who may use the desk: requesters never reach it, agents work tickets, incidents and windows, deleting stays with
admins; and every form of the desk is refused without its CSRF token, changing nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from itsm.models import Comment, Event, Incident, MaintenanceWindow, Postmortem, Ticket
from itsm.services.incidents import incident_create
from itsm.services.maintenance import maintenance_create
from itsm.services.sla import sla_policy_default
from tests.conftest import page_text
from tests.desk.conftest import Desk
from tests.factories import make_ticket
from tests.maintenance.conftest import START


@pytest.fixture
def objects(agent: Any, requester: Any) -> dict[str, Any]:
    return {
        "ticket": make_ticket(requester, title="Printer jams"),
        "incident": incident_create(actor=agent, title="API down", severity="low"),
        "maintenancewindow": maintenance_create(
            actor=agent, title="Reboot", starts_at=START, ends_at=START + timedelta(hours=1), backup_required=False
        ),
    }


# Every form of the desk: where it posts, and what a valid post sends.
FORMS = [
    ("ticket", "reply", {"body": "Hello", "visibility": "public"}),
    ("ticket", "move", {"to": "open"}),
    ("ticket", "assign-to-me", {}),
    ("incident", "move", {"to": "acknowledged"}),
    ("incident", "note", {"body": "Looking", "kind": "internal"}),
    ("incident", "postmortem", {"summary": "It broke", "status": "draft"}),
    ("incident", "action-item", {"title": "Fix it", "priority": "low"}),
    ("incident", "page-again", {}),
    ("maintenancewindow", "move", {"to": "cancelled"}),
]


def url(objects: dict[str, Any], model: str, name: str) -> str:
    return f"/admin/itsm/{model}/{objects[model].pk}/desk/{name}/"


def footprint() -> tuple[Any, ...]:
    """Everything a desk form could write."""
    return (
        Event.objects.count(),
        Comment.objects.count(),
        Ticket.objects.count(),
        Postmortem.objects.count(),
        sorted(Ticket.objects.values_list("status", "assignee", "version")),
        sorted(Incident.objects.values_list("status", flat=True)),
        sorted(MaintenanceWindow.objects.values_list("status", flat=True)),
    )


@pytest.mark.parametrize(("model", "name", "data"), FORMS)
def test_every_desk_form_is_refused_without_its_csrf_token_and_changes_nothing(
    desk: Desk, admin: Any, objects: dict[str, Any], model: str, name: str, data: dict[str, Any]
) -> None:
    before = footprint()
    response = desk.post_without_token(url(objects, model, name), data)
    assert response.status_code == 403
    assert footprint() == before
    # The same post with the token goes through: the refusal was the token's.
    assert desk.post(url(objects, model, name), data).status_code == 302
    assert footprint() != before


def test_the_bulk_actions_are_refused_without_the_csrf_token(desk: Desk, objects: dict[str, Any]) -> None:
    ticket = objects["ticket"]
    data = {"action": "move", "_selected_action": [ticket.pk], "apply": "1", "to": "open"}
    assert desk.post_without_token("/admin/itsm/ticket/", data).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == "new"


@pytest.mark.parametrize(("model", "name", "data"), FORMS)
def test_a_requester_cannot_post_to_the_desk(
    requester: Any, objects: dict[str, Any], model: str, name: str, data: dict[str, Any]
) -> None:
    before = footprint()
    response = Desk(requester).post(url(objects, model, name), data)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert footprint() == before


def test_a_requester_cannot_open_the_desks_pages(requester: Any, objects: dict[str, Any]) -> None:
    client = Desk(requester)
    for model, obj in objects.items():
        response = client.get(f"/admin/itsm/{model}/{obj.pk}/change/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_an_agent_opens_every_page_of_the_desk(desk: Desk, objects: dict[str, Any]) -> None:
    for path in ("/admin/", "/admin/itsm/ticket/?queue=mine", "/admin/itsm/incident/?state=open"):
        assert desk.get(path).status_code == 200, path
    for model, obj in objects.items():
        text = page_text(desk.get(f"/admin/itsm/{model}/{obj.pk}/change/"))
        assert 'id="desk"' in text, model


def test_deleting_stays_with_admins(desk: Desk, admin_desk: Desk, objects: dict[str, Any]) -> None:
    ticket = objects["ticket"]
    assert desk.get(f"/admin/itsm/ticket/{ticket.pk}/delete/").status_code == 403
    assert desk.post(f"/admin/itsm/ticket/{ticket.pk}/delete/", {"post": "yes"}).status_code == 403
    desk.post("/admin/itsm/ticket/", {"action": "delete_selected", "_selected_action": [ticket.pk], "post": "yes"})
    assert Ticket.objects.filter(pk=ticket.pk).exists()
    assert "delete_selected" not in page_text(desk.get("/admin/itsm/ticket/"))
    # The file list with its delete boxes is on an admin's page only.
    assert "attachments-TOTAL_FORMS" not in page_text(desk.get(f"/admin/itsm/ticket/{ticket.pk}/change/"))
    assert "attachments-TOTAL_FORMS" in page_text(admin_desk.get(f"/admin/itsm/ticket/{ticket.pk}/change/"))
    assert admin_desk.get(f"/admin/itsm/ticket/{ticket.pk}/delete/").status_code == 200


def test_an_agent_cannot_change_what_only_admins_change(desk: Desk) -> None:
    policy = sla_policy_default()
    assert desk.get(f"/admin/itsm/slapolicy/{policy.pk}/change/").status_code == 403
