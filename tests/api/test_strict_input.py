"""Input means what the OpenAPI schema says (itsm/api/strict.py): ids are whole numbers from 1, booleans are true or
false, text is text, and what the schema allows the server takes. Each case here was found by schemathesis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from itsm.models import Incident, MaintenanceWindow, NotificationChannel
from tests.factories import TeamFactory, make_ticket

pytestmark = pytest.mark.django_db


class TestIdFilters:
    @pytest.mark.parametrize("value", ["2.5", "0", "-3", "1e5", "1.7976931348623157e+308", "two"])
    def test_an_id_filter_that_is_not_a_whole_number_from_1_is_a_400(self, as_agent, value):
        response = as_agent.get("/api/v1/tickets/", {"requester": value})
        assert response.status_code == 400
        assert set(response.json()) == {"requester"}

    def test_an_id_that_does_not_exist_matches_nothing(self, as_agent, requester):
        make_ticket(requester)
        assert as_agent.get("/api/v1/tickets/", {"requester": 2**63 - 1}).json()["results"] == []
        assert len(as_agent.get("/api/v1/tickets/", {"requester": requester.pk}).json()["results"]) == 1


class TestBooleanFilters:
    @pytest.mark.parametrize("value", ["417", "1", "yes", "åx"])
    def test_a_boolean_filter_takes_true_or_false_only(self, as_requester, value):
        assert as_requester.get("/api/v1/notifications/", {"urgent": value}).status_code == 400
        assert as_requester.get("/api/v1/notification-channels/", {"enabled": value}).status_code == 400

    def test_true_and_false_filter(self, as_requester, requester):
        NotificationChannel.objects.create(user=requester, channel="email", target="rita@example.com", enabled=False)
        assert as_requester.get("/api/v1/notification-channels/", {"enabled": "true"}).json()["results"] == []
        assert len(as_requester.get("/api/v1/notification-channels/", {"enabled": "False"}).json()["results"]) == 1


class TestText:
    def test_a_number_for_a_text_field_is_a_400_not_text(self, as_agent):
        response = as_agent.post("/api/v1/incidents/", {"title": 42, "severity": "low"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"title": ["Not a valid string."]}
        assert not Incident.objects.exists()

    def test_a_number_for_a_slug_is_a_400(self, as_admin):
        response = as_admin.post("/api/v1/teams/", {"name": "Ops", "slug": 123}, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"slug"}


class TestMaintenanceChecks:
    def _window(self, checks):
        start = timezone.now() + timedelta(days=1)
        return {
            "title": "Upgrade",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "checks": checks,
        }

    @pytest.mark.parametrize("checks", [None, [{"kind": []}], [{"kind": {"a": 1}}], [{"kind": "promql", "expr": " "}]])
    def test_checks_that_are_not_a_list_of_known_kinds_are_a_400(self, as_agent, checks):
        response = as_agent.post("/api/v1/maintenance-windows/", self._window(checks), format="json")
        assert response.status_code == 400, response.content
        assert set(response.json()) == {"checks"}
        assert not MaintenanceWindow.objects.exists()

    def test_documented_checks_are_taken(self, as_agent):
        checks = [{"kind": "api_health"}, {"kind": "promql", "expr": "up == 1"}]
        response = as_agent.post("/api/v1/maintenance-windows/", self._window(checks), format="json")
        assert response.status_code == 201, response.content
        assert response.json()["checks"] == checks


class TestOnCallAndReports:
    def test_the_on_call_page_says_the_moment_and_refuses_team_0(self, as_requester):
        TeamFactory.create()
        body = as_requester.get("/api/v1/oncall/").json()
        assert set(body) == {"at", "next", "previous", "results"}
        assert set(body["results"][0]) >= {"team", "on_call", "next_on_call"}
        assert as_requester.get("/api/v1/oncall/", {"team": 0}).status_code == 400


@pytest.mark.django_db
def test_a_search_longer_than_documented_is_refused_not_cut(as_agent):
    response = as_agent.get("/api/v1/tickets/", {"search": "x" * 201})
    assert response.status_code == 400
    assert "search" in response.json()
    assert as_agent.get("/api/v1/tickets/", {"search": "x" * 200}).status_code == 200
