"""/api/v1/audit/: admins read the trail, filtered by object, actor, source, action and period, a page at a time in a
fixed number of queries; a deleted ticket's history stays there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from auditlog.models import LogEntry

from tests.factories import make_ticket

pytestmark = pytest.mark.django_db
AUDIT = "/api/v1/audit/"


def test_requesters_and_agents_get_403_and_anonymous_401(as_requester, as_agent, anonymous):
    assert as_requester.get(AUDIT).status_code == 403
    assert as_agent.get(AUDIT).status_code == 403
    assert anonymous.get(AUDIT).status_code == 401


def test_a_deleted_tickets_history_stays_readable_by_admins(as_agent, as_admin, agent, admin):
    created = as_agent.post("/api/v1/tickets/", {"title": "Disk full", "priority": "low"}, format="json")
    assert created.status_code == 201, created.content
    ticket_id = created.json()["id"]
    comment = as_agent.post(f"/api/v1/tickets/{ticket_id}/comments/", {"body": "Cleaning /var."}, format="json")
    assert comment.status_code == 201, comment.content
    assert as_admin.delete(f"/api/v1/tickets/{ticket_id}/").status_code == 204

    response = as_admin.get(AUDIT, {"object_type": "ticket", "object_id": ticket_id})
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    # The comment touched the ticket.
    assert [row["action"] for row in rows] == ["delete", "update", "create"]
    deleted, responded, made = rows
    assert responded["actor_username"] == "alice"
    assert "updated_at" in responded["changes"]
    assert (deleted["actor_username"], deleted["source"], deleted["detail"]) == (
        "adam",
        "api",
        f"DELETE /api/v1/tickets/{ticket_id}/",
    )
    assert deleted["object_repr"] == f"#{ticket_id} Disk full"
    assert (made["actor"], made["actor_username"], made["actor_email"]) == (agent.pk, "alice", agent.email)
    assert made["changes"]["title"] == [None, "Disk full"]
    assert made["object_type"] == "ticket"
    assert made["object_id"] == str(ticket_id)
    # The comment went with the ticket, and its deletion is recorded too.
    comments = as_admin.get(AUDIT, {"object_type": "comment", "action": "delete"}).json()["results"]
    assert [row["object_repr"] for row in comments] == [f"Comment {comment.json()['id']} on ticket {ticket_id}"]


def test_filters_by_actor_source_and_period(as_admin, agent, admin, requester):
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False):
        make_ticket(requester, title="Old one")
    with time_machine.travel(datetime(2026, 3, 9, 9, 0, tzinfo=UTC), tick=False):
        make_ticket(requester, title="New one")
    rows = as_admin.get(AUDIT, {"object_type": "ticket", "changed_after": "2026-03-05T00:00:00Z"}).json()["results"]
    assert [row["object_repr"].split(" ", 1)[1] for row in rows] == ["New one"]
    rows = as_admin.get(AUDIT, {"object_type": "ticket", "changed_before": "2026-03-05T00:00:00Z"}).json()["results"]
    assert [row["object_repr"].split(" ", 1)[1] for row in rows] == ["Old one"]
    assert as_admin.get(AUDIT, {"actor": agent.pk}).json()["results"] == []
    assert {row["source"] for row in as_admin.get(AUDIT, {"source": "command"}).json()["results"]} == {"command"}
    assert as_admin.get(AUDIT, {"source": "mail"}).json()["results"] == []


def test_bad_filters_are_a_400_naming_the_parameter(as_admin):
    response = as_admin.get(AUDIT, {"object_type": "no-such-thing", "object_id": "x", "changed_after": "soon"})
    assert response.status_code == 400
    assert set(response.json()) >= {"object_type", "object_id", "changed_after"}


def test_the_list_pages_without_count_in_a_fixed_number_of_queries(
    as_admin, client_for, agent, requester, django_assert_max_num_queries
):
    for number in range(12):
        make_ticket(requester, title=f"Ticket {number}")
    as_agent = client_for(agent)
    ticket_ids = [row.object_id for row in LogEntry.objects.filter(content_type__model="ticket")]
    for ticket_id in ticket_ids[:3]:
        as_agent.post(f"/api/v1/tickets/{ticket_id}/comments/", {"body": "Looking."}, format="json")
    as_admin.get(AUDIT)  # the content types are cached from here on, as in a running process
    with django_assert_max_num_queries(3):  # the token with its user, the page
        response = as_admin.get(AUDIT, {"page_size": 10})
    body = response.json()
    assert len(body["results"]) == 10
    assert body["next"] is not None
    assert body["previous"] is None
    page_two = as_admin.get(body["next"]).json()
    seen = {row["id"] for row in body["results"]}
    assert seen.isdisjoint(row["id"] for row in page_two["results"])
    with django_assert_max_num_queries(3):
        as_admin.get(AUDIT, {"object_type": "ticket", "actor": agent.pk, "page_size": 50})


def test_a_sign_in_writes_no_audit_row(as_admin, anonymous, requester):
    before = LogEntry.objects.count()
    response = anonymous.post(
        "/api/v1/auth/token/", {"username": "rita", "password": "correct-horse-battery"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert LogEntry.objects.count() == before
