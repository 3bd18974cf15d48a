"""The ticket API as requesters and agents use it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from itsm.models import Event, SlaPolicy, SlaPolicyScope, Ticket
from itsm.services.sla import sla_policy_default
from tests.factories import ServiceFactory, make_ticket

URL = "/api/v1/tickets/"


def detail(ticket_id: int) -> str:
    return f"{URL}{ticket_id}/"


@pytest.mark.django_db
class TestCreate:
    def test_requester_opens_a_ticket_with_defaults_and_sla_due_times(self, as_requester, requester):
        response = as_requester.post(
            URL, {"title": "Laptop will not boot", "description": "Black screen"}, format="json"
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] == "new"
        assert body["priority"] == "medium"
        assert body["requester"] == requester.pk
        assert body["sla_status"] == "ok"
        assert body["response_due_at"] is not None
        assert body["resolution_due_at"] is not None
        assert response["ETag"] == f'"{body["id"]}-1"'
        assert response["Location"].endswith(detail(body["id"]))
        assert Event.objects.filter(ticket_id=body["id"], kind="created").count() == 1

    def test_missing_title_and_unknown_priority_are_reported_per_field(self, as_requester):
        response = as_requester.post(URL, {"priority": "urgent"}, format="json")
        assert response.status_code == 400
        errors = response.json()
        assert errors["title"] == ["This field is required."]
        assert "urgent" in errors["priority"][0]
        assert not Ticket.objects.exists()

    def test_a_201_character_title_is_refused(self, as_requester):
        response = as_requester.post(URL, {"title": "x" * 201}, format="json")
        assert response.status_code == 400
        assert "200" in response.json()["title"][0]
        assert not Ticket.objects.exists()

    def test_a_200_character_title_is_accepted(self, as_requester):
        assert as_requester.post(URL, {"title": "x" * 200}, format="json").status_code == 201

    def test_a_blank_title_is_refused(self, as_requester):
        response = as_requester.post(URL, {"title": ""}, format="json")
        assert response.status_code == 400
        assert "title" in response.json()

    def test_a_body_that_is_not_json_is_a_json_400(self, as_requester):
        response = as_requester.post(URL, data="title=oops", content_type="application/json")
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert "JSON parse error" in response.json()["detail"]

    def test_a_form_encoded_body_is_refused_with_415(self, as_requester):
        response = as_requester.post(URL, data="title=oops", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415
        assert "detail" in response.json()

    def test_status_and_requester_in_the_body_are_ignored(self, as_requester, requester, other_requester):
        body = {"title": "Mouse broken", "status": "closed", "requester": other_requester.pk}
        response = as_requester.post(URL, body, format="json")
        assert response.status_code == 201
        ticket = Ticket.objects.get()
        assert (ticket.status, ticket.requester) == ("new", requester)

    def test_requester_cannot_assign_a_ticket(self, as_requester, agent):
        response = as_requester.post(URL, {"title": "Mouse broken", "assignee": agent.pk}, format="json")
        assert response.status_code == 400
        assert "assignee" in response.json()
        assert not Ticket.objects.exists()

    def test_agent_opens_an_assigned_ticket_for_a_service(self, as_agent, agent):
        service = ServiceFactory.create()
        body = {
            "title": "Disk full",
            "priority": "high",
            "service": service.pk,
            "assignee": agent.pk,
            "category": "ops",
        }
        response = as_agent.post(URL, body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["assignee"] == agent.pk
        assert response.json()["service"] == service.pk

    def test_only_agents_can_be_assignees(self, as_agent, requester):
        response = as_agent.post(URL, {"title": "Disk full", "assignee": requester.pk}, format="json")
        assert response.status_code == 400
        assert "assignee" in response.json()

    def test_an_unknown_service_is_a_field_error(self, as_agent):
        response = as_agent.post(URL, {"title": "Disk full", "service": 999999}, format="json")
        assert response.status_code == 400
        assert "service" in response.json()

    def test_anonymous_callers_get_401_json(self, anonymous):
        response = anonymous.post(URL, {"title": "x"}, format="json")
        assert response.status_code == 401
        assert response.json()["detail"]


@pytest.mark.django_db
class TestVisibility:
    def test_requester_cannot_see_another_requesters_ticket(self, as_requester, other_requester):
        theirs = make_ticket(other_requester, title="Salary spreadsheet locked")
        assert as_requester.get(detail(theirs.pk)).status_code == 404
        assert as_requester.get(URL).json()["results"] == []
        assert as_requester.get(URL, {"search": "salary"}).json()["results"] == []
        assert as_requester.get(f"{detail(theirs.pk)}events/").status_code == 404
        assert as_requester.get(f"{detail(theirs.pk)}comments/").status_code == 404

    def test_requester_cannot_change_another_requesters_ticket(self, as_requester, other_requester):
        theirs = make_ticket(other_requester)
        assert (
            as_requester.patch(
                detail(theirs.pk), {"title": "mine"}, format="json", HTTP_IF_MATCH=theirs.etag
            ).status_code
            == 404
        )
        assert as_requester.post(f"{detail(theirs.pk)}transition/", {"to": "closed"}, format="json").status_code == 404
        assert as_requester.post(f"{detail(theirs.pk)}comments/", {"body": "hi"}, format="json").status_code == 404
        theirs.refresh_from_db()
        assert (theirs.title, theirs.status) == ("Printer on floor 3 jams", "new")

    def test_requester_filtering_by_another_requester_sees_nothing(self, as_requester, other_requester):
        make_ticket(other_requester)
        assert as_requester.get(URL, {"requester": other_requester.pk}).json()["results"] == []

    def test_agent_sees_every_ticket(self, as_agent, requester, other_requester):
        mine, theirs = make_ticket(requester), make_ticket(other_requester)
        ids = {ticket["id"] for ticket in as_agent.get(URL).json()["results"]}
        assert ids == {mine.pk, theirs.pk}

    def test_only_admins_delete_tickets(self, as_requester, as_agent, as_admin, requester):
        ticket = make_ticket(requester)
        assert as_requester.delete(detail(ticket.pk)).status_code == 403
        assert as_agent.delete(detail(ticket.pk)).status_code == 403
        assert as_admin.delete(detail(ticket.pk)).status_code == 204
        assert not Ticket.objects.filter(pk=ticket.pk).exists()


@pytest.mark.django_db
class TestEditing:
    def test_requester_edits_title_and_description_while_new(self, as_requester, requester):
        ticket = make_ticket(requester)
        response = as_requester.patch(
            detail(ticket.pk), {"title": "Printer jams"}, format="json", HTTP_IF_MATCH=ticket.etag
        )
        assert response.status_code == 200, response.content
        assert response.json()["title"] == "Printer jams"
        assert response["ETag"] == f'"{ticket.pk}-2"'
        event = Event.objects.get(ticket=ticket, kind="changed")
        assert (event.field, event.old_value, event.new_value, event.actor) == (
            "title",
            "Printer on floor 3 jams",
            "Printer jams",
            requester,
        )

    def test_requester_cannot_change_priority(self, as_requester, requester):
        ticket = make_ticket(requester)
        response = as_requester.patch(
            detail(ticket.pk), {"priority": "critical"}, format="json", HTTP_IF_MATCH=ticket.etag
        )
        assert response.status_code == 400
        assert "priority" in response.json()
        ticket.refresh_from_db()
        assert ticket.priority == "medium"

    def test_requester_cannot_edit_once_work_started(self, as_requester, as_agent, requester):
        ticket = make_ticket(requester)
        as_agent.post(f"{detail(ticket.pk)}transition/", {"to": "in_progress"}, format="json")
        ticket.refresh_from_db()
        response = as_requester.patch(detail(ticket.pk), {"title": "Edited"}, format="json", HTTP_IF_MATCH=ticket.etag)
        assert response.status_code == 403

    def test_agent_raises_priority_and_the_due_times_move(self, as_agent, requester):
        ticket = make_ticket(requester)
        response = as_agent.patch(detail(ticket.pk), {"priority": "critical"}, format="json", HTTP_IF_MATCH=ticket.etag)
        assert response.status_code == 200
        ticket.refresh_from_db()
        assert ticket.priority == "critical"
        assert ticket.response_due_at is not None
        assert (ticket.response_due_at - ticket.created_at).total_seconds() == 15 * 60

    def test_agent_moves_a_ticket_to_a_service_with_its_own_policy_and_the_ticket_shows_it(self, as_agent, requester):
        default = sla_policy_default()
        service = ServiceFactory.create(slug="payroll")
        payroll = SlaPolicy.objects.create(name="Payroll", calendar=default.calendar, medium_response_minutes=30)
        SlaPolicyScope.objects.create(policy=payroll, service=service)
        ticket = make_ticket(requester)
        assert as_agent.get(detail(ticket.pk)).json()["sla_policy"] == default.pk
        etag = as_agent.get(detail(ticket.pk))["ETag"]
        response = as_agent.patch(detail(ticket.pk), {"service": service.pk}, format="json", HTTP_IF_MATCH=etag)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["sla_policy"] == payroll.pk
        ticket.refresh_from_db()
        assert ticket.response_due_at is not None
        assert ticket.response_due_at - ticket.created_at == timedelta(minutes=30)
        events = as_agent.get(f"{detail(ticket.pk)}events/").json()["results"]
        assert [(e["field"], e["old_value"], e["new_value"]) for e in events if e["kind"] == "changed"] == [
            ("service", "", str(service.pk)),
            ("sla_policy", str(default.pk), str(payroll.pk)),
        ]

    def test_patch_without_if_match_is_428(self, as_agent, requester):
        ticket = make_ticket(requester)
        response = as_agent.patch(detail(ticket.pk), {"title": "New"}, format="json")
        assert response.status_code == 428
        assert "If-Match" in response.json()["detail"]
        ticket.refresh_from_db()
        assert ticket.title == "Printer on floor 3 jams"

    def test_patch_with_a_stale_etag_is_412_and_changes_nothing(self, as_agent, requester):
        ticket = make_ticket(requester)
        stale = ticket.etag
        first = as_agent.patch(detail(ticket.pk), {"title": "First"}, format="json", HTTP_IF_MATCH=stale)
        assert first.status_code == 200
        second = as_agent.patch(detail(ticket.pk), {"title": "Second"}, format="json", HTTP_IF_MATCH=stale)
        assert second.status_code == 412
        assert second["ETag"] == first["ETag"]
        ticket.refresh_from_db()
        assert ticket.title == "First"

    def test_an_etag_of_another_ticket_or_garbage_is_412(self, as_agent, requester):
        ticket, other = make_ticket(requester), make_ticket(requester)
        for header in (other.etag, "garbage", "*"):
            response = as_agent.patch(detail(ticket.pk), {"title": "x"}, format="json", HTTP_IF_MATCH=header)
            assert response.status_code == 412, header

    def test_put_replaces_the_editable_fields(self, as_agent, requester):
        ticket = make_ticket(requester)
        body = {"title": "Replaced", "description": "All new", "priority": "low", "category": "hw", "service": None}
        response = as_agent.put(detail(ticket.pk), body, format="json", HTTP_IF_MATCH=ticket.etag)
        assert response.status_code == 200, response.content
        assert response.json()["priority"] == "low"

    def test_retrieve_carries_the_etag(self, as_requester, requester):
        ticket = make_ticket(requester)
        response = as_requester.get(detail(ticket.pk))
        assert response["ETag"] == ticket.etag


@pytest.mark.django_db
class TestTransitions:
    def test_agent_moves_a_ticket_through_its_lifecycle(self, as_agent, requester):
        ticket = make_ticket(requester)
        for target in ("open", "in_progress", "pending", "in_progress", "resolved", "closed"):
            response = as_agent.post(f"{detail(ticket.pk)}transition/", {"to": target, "note": "step"}, format="json")
            assert response.status_code == 200, (target, response.content)
            assert response.json()["status"] == target
        ticket.refresh_from_db()
        assert ticket.resolved_at is not None
        assert ticket.closed_at is not None
        assert Event.objects.filter(ticket=ticket, kind="transition").count() == 6

    def test_an_illegal_transition_is_409_naming_the_allowed_states(self, as_agent, requester):
        ticket = make_ticket(requester)
        response = as_agent.post(f"{detail(ticket.pk)}transition/", {"to": "pending"}, format="json")
        assert response.status_code == 409
        body = response.json()
        assert body["allowed"] == ["closed", "in_progress", "open", "resolved"]
        assert "closed, in_progress, open, resolved" in body["detail"]
        ticket.refresh_from_db()
        assert ticket.status == "new"

    def test_an_unknown_target_status_is_a_field_error(self, as_agent, requester):
        ticket = make_ticket(requester)
        response = as_agent.post(f"{detail(ticket.pk)}transition/", {"to": "done"}, format="json")
        assert response.status_code == 400
        assert "to" in response.json()

    def test_asking_for_the_current_status_changes_nothing(self, as_agent, requester):
        ticket = make_ticket(requester)
        response = as_agent.post(f"{detail(ticket.pk)}transition/", {"to": "new"}, format="json")
        assert response.status_code == 200
        assert not Event.objects.filter(ticket=ticket, kind="transition").exists()

    def test_requester_closes_and_reopens_their_own_ticket(self, as_requester, as_agent, requester):
        ticket = make_ticket(requester)
        as_agent.post(f"{detail(ticket.pk)}transition/", {"to": "resolved"}, format="json")
        reopened = as_requester.post(f"{detail(ticket.pk)}transition/", {"to": "open"}, format="json")
        assert reopened.status_code == 200
        assert reopened.json()["resolved_at"] is None
        closed = as_requester.post(f"{detail(ticket.pk)}transition/", {"to": "closed"}, format="json")
        assert closed.status_code == 200

    def test_requester_cannot_start_work_on_a_ticket(self, as_requester, requester):
        ticket = make_ticket(requester)
        response = as_requester.post(f"{detail(ticket.pk)}transition/", {"to": "in_progress"}, format="json")
        assert response.status_code == 403


@pytest.mark.django_db
class TestComments:
    def test_agent_first_public_comment_stamps_first_response(self, as_agent, requester):
        ticket = make_ticket(requester)
        response = as_agent.post(f"{detail(ticket.pk)}comments/", {"body": "Looking into it"}, format="json")
        assert response.status_code == 201
        ticket.refresh_from_db()
        assert ticket.first_response_at is not None
        assert ticket.sla_status == "ok"

    def test_internal_notes_do_not_count_as_a_response_and_are_hidden_from_requesters(
        self, as_agent, as_requester, requester
    ):
        ticket = make_ticket(requester)
        as_agent.post(f"{detail(ticket.pk)}comments/", {"body": "Check the toner", "internal": True}, format="json")
        as_agent.post(f"{detail(ticket.pk)}comments/", {"body": "We are on it"}, format="json")
        ticket.refresh_from_db()
        seen_by_requester = [c["body"] for c in as_requester.get(f"{detail(ticket.pk)}comments/").json()["results"]]
        seen_by_agent = [c["body"] for c in as_agent.get(f"{detail(ticket.pk)}comments/").json()["results"]]
        assert seen_by_requester == ["We are on it"]
        assert seen_by_agent == ["Check the toner", "We are on it"]
        requester_events = as_requester.get(f"{detail(ticket.pk)}events/").json()["results"]
        assert all(event["field"] != "internal_comment" for event in requester_events)

    def test_a_requesters_comment_is_not_a_first_response(self, as_requester, requester):
        ticket = make_ticket(requester)
        response = as_requester.post(f"{detail(ticket.pk)}comments/", {"body": "Any news?"}, format="json")
        assert response.status_code == 201
        ticket.refresh_from_db()
        assert ticket.first_response_at is None

    def test_requesters_cannot_write_internal_notes(self, as_requester, requester):
        ticket = make_ticket(requester)
        response = as_requester.post(f"{detail(ticket.pk)}comments/", {"body": "psst", "internal": True}, format="json")
        assert response.status_code == 403
        assert response.json()["detail"] == "Only agents can write internal notes."
        assert not ticket.comments.exists()

    def test_an_empty_comment_is_refused(self, as_agent, requester):
        ticket = make_ticket(requester)
        response = as_agent.post(f"{detail(ticket.pk)}comments/", {"body": ""}, format="json")
        assert response.status_code == 400
        assert "body" in response.json()

    def test_events_list_every_change_with_actor_and_values(self, as_agent, agent, requester):
        ticket = make_ticket(requester)
        as_agent.post(f"{detail(ticket.pk)}transition/", {"to": "open", "note": "triaged"}, format="json")
        events = as_agent.get(f"{detail(ticket.pk)}events/").json()["results"]
        transition = next(event for event in events if event["kind"] == "transition")
        assert (transition["actor"], transition["old_value"], transition["new_value"], transition["note"]) == (
            agent.pk,
            "new",
            "open",
            "triaged",
        )
