"""Input means what the OpenAPI schema says (itsm/api/strict.py): ids are whole numbers from 1, booleans are true or
false, text is text, and what the schema allows the server takes. Each case here was found by schemathesis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from itsm.models import Alert, Incident, MaintenanceWindow, NotificationChannel, Team
from tests.etags import if_match
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


class TestLists:
    def test_an_object_for_a_list_of_ids_is_a_400_not_an_empty_list(self, as_agent, as_admin, agent):
        window = self._window(as_agent)
        response = as_agent.patch(
            f"/api/v1/maintenance-windows/{window}/",
            {"notify_users": {}},
            format="json",
            **if_match(MaintenanceWindow, window),
        )
        assert response.status_code == 400
        assert response.json() == {"notify_users": ["Expected a list of items."]}
        response = as_admin.post("/api/v1/teams/", {"name": "Ops", "slug": "ops", "members": {}}, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"members"}
        assert not Team.objects.exists()
        ok = as_agent.patch(
            f"/api/v1/maintenance-windows/{window}/",
            {"notify_users": [agent.pk]},
            format="json",
            **if_match(MaintenanceWindow, window),
        )
        assert ok.json()["notify_users"] == [agent.pk]

    def _window(self, client):
        start = timezone.now() + timedelta(days=1)
        body = {"title": "Upgrade", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
        return client.post("/api/v1/maintenance-windows/", body, format="json").json()["id"]


class TestAlertmanagerIntake:
    URL = "/api/v1/alerts/alertmanager/"

    @pytest.fixture
    def intake(self, anonymous, settings):
        settings.ITSM_ALERTMANAGER_TOKEN = "intake-token"
        anonymous.credentials(HTTP_AUTHORIZATION="Bearer intake-token")
        return anonymous

    def _post(self, client, **alert):
        body = {"version": "4", "alerts": [{"status": "resolved", "labels": {}, "fingerprint": "f1", **alert}]}
        return client.post(self.URL, body, format="json")

    def test_a_delivery_without_alerts_is_a_400_as_the_schema_says(self, intake):
        response = intake.post(self.URL, {"version": "4", "alerts": []}, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"alerts"}

    @pytest.mark.parametrize("alert", [{"fingerprint": 7}, {"labels": {"severity": 2}}, {"generatorURL": False}])
    def test_a_number_for_text_is_a_400_not_text(self, intake, alert):
        assert self._post(intake, **alert).status_code == 400
        assert not Alert.objects.exists()

    def test_text_is_taken_as_sent_not_trimmed(self, intake):
        assert self._post(intake, fingerprint="  ", labels={"team": " ops "}).status_code == 200
        assert Alert.objects.get().fingerprint == "  "
        assert Alert.objects.get().labels == {"team": " ops "}

    def test_nul_in_a_label_value_is_a_400_and_in_a_label_name_becomes_a_replacement_character(self, intake):
        # PostgreSQL's jsonb cannot store NUL (this was a 500); the schema can forbid it in a value, not in a name.
        assert self._post(intake, labels={"team": "o\x00ps"}).status_code == 400
        assert self._post(intake, labels={"te\x00am": "ops"}).status_code == 200
        # A lone surrogate is no character either; the test client cannot encode one, so the JSON is written out.
        body = '{"version": "4", "alerts": [{"status": "resolved", "labels": {}, "annotations": {"\\ud800": "x"}, '
        body += '"fingerprint": "f2"}]}'
        assert intake.post(self.URL, body, content_type="application/json").status_code == 200
        in_a_value = body.replace('"x"', '"\\ud800"')  # a 400 in a value, as NUL is (it was a 500)
        assert intake.post(self.URL, in_a_value, content_type="application/json").status_code == 400
        assert Alert.objects.get(fingerprint="f1").labels == {"te\ufffdam": "ops"}
        assert Alert.objects.get(fingerprint="f2").annotations == {"\ufffd": "x"}

    def test_an_alert_without_a_generator_url_reads_back_as_documented(self, intake, as_agent):
        assert self._post(intake).status_code == 200
        assert as_agent.get(f"/api/v1/alerts/{Alert.objects.get().pk}/").json()["generator_url"] == ""


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

    def test_an_expression_with_nul_is_a_400(self, as_agent):
        response = as_agent.post(
            "/api/v1/maintenance-windows/", self._window([{"kind": "promql", "expr": "up\x00"}]), format="json"
        )
        assert response.status_code == 400
        assert set(response.json()) == {"checks"}

    def test_documented_checks_are_taken(self, as_agent):
        checks = [{"kind": "api_health"}, {"kind": "promql", "expr": "up == 1"}]
        response = as_agent.post("/api/v1/maintenance-windows/", self._window(checks), format="json")
        assert response.status_code == 201, response.content
        assert response.json()["checks"] == checks


class TestNotificationChannels:
    def test_a_target_is_an_address_for_e_mail_and_an_http_url_otherwise(self, as_requester):
        for channel, target in (("email", "https://example.com/hook"), ("webhook", "rita@example.com")):
            response = as_requester.post("/api/v1/notification-channels/", {"channel": channel, "target": target})
            assert response.status_code == 400, (channel, response.content)
            assert set(response.json()) == {"target"}
        body = {"channel": "email", "target": "rita@example.com"}
        assert as_requester.post("/api/v1/notification-channels/", body, format="json").status_code == 201


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
