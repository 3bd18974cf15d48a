"""Alertmanager's webhook: authenticated, validated, stored once by fingerprint, one incident per group."""

from __future__ import annotations

from typing import Any

import pytest

from itsm.models import Alert, Event, Incident
from itsm.services.incidents import incident_transition
from tests.factories import ServiceFactory

URL = "/api/v1/alerts/alertmanager/"
TOKEN = "s3cret-intake-token"
pytestmark = pytest.mark.django_db


def payload(
    status: str = "firing", *alerts: dict[str, Any], group_key: str = '{}:{alertname="ApiDown"}'
) -> dict[str, Any]:
    alerts = alerts or (alert(status),)
    return {
        "version": "4",
        "groupKey": group_key,
        "status": status,
        "receiver": "itsm-paging",
        "groupLabels": {"alertname": "ApiDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


def alert(status: str = "firing", fingerprint: str = "a1b2c3", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "ApiDown", "severity": "critical", "service": "api", **labels},
        "annotations": {"summary": "API is down", "description": "No scrape for 2 minutes"},
        "startsAt": "2026-11-26T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-26T10:30:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


@pytest.fixture
def intake(anonymous, settings, agent):
    """A client authenticated as Alertmanager (and an agent on call, so paging has someone to page)."""
    settings.ITSM_ALERTMANAGER_TOKEN = TOKEN
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return anonymous


@pytest.fixture
def api_service(db):
    return ServiceFactory.create(slug="api", name="API")


class TestAuthenticationAndValidation:
    def test_a_wrong_or_missing_token_is_401_and_stores_nothing(self, anonymous, settings):
        settings.ITSM_ALERTMANAGER_TOKEN = TOKEN
        assert anonymous.post(URL, payload(), format="json").status_code == 401
        anonymous.credentials(HTTP_AUTHORIZATION="Bearer wrong")
        response = anonymous.post(URL, payload(), format="json")
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {TOKEN}")
        assert anonymous.post(URL, payload(), format="json").status_code == 401
        assert not Alert.objects.exists()

    def test_without_a_configured_token_the_intake_refuses_everything(self, anonymous, settings):
        settings.ITSM_ALERTMANAGER_TOKEN = ""
        anonymous.credentials(HTTP_AUTHORIZATION="Bearer ")
        response = anonymous.post(URL, payload(), format="json")
        assert response.status_code == 401
        assert "ITSM_ALERTMANAGER_TOKEN" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (lambda p: p.update(version="3"), "version"),
            (lambda p: p.update(alerts=[]), "alerts"),
            (lambda p: p["alerts"][0].pop("fingerprint"), "alerts"),
            (lambda p: p["alerts"][0].update(status="pending"), "alerts"),
            (lambda p: p["alerts"][0].update(labels="not a map"), "alerts"),
            (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts"),
        ],
    )
    def test_a_malformed_body_is_a_400_naming_the_problem_and_stores_nothing(self, intake, change, field):
        body = payload()
        change(body)
        response = intake.post(URL, body, format="json")
        assert response.status_code == 400
        assert field in response.json()
        assert not Alert.objects.exists()
        assert not Incident.objects.exists()

    def test_a_partly_bad_delivery_stores_none_of_its_alerts(self, intake):
        body = payload("firing", alert(fingerprint="good"), {**alert(fingerprint="bad"), "endsAt": "never"})
        assert intake.post(URL, body, format="json").status_code == 400
        assert not Alert.objects.exists()

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (42, "Not a valid string."),
            ("a\x00b", "Null characters are not allowed."),
            ("x" * 10001, "Ensure this field has no more than 10000 characters."),
        ],
    )
    def test_a_label_value_that_is_not_storable_text_is_named_in_the_400(self, intake, value, message):
        body = payload("firing", alert(instance="db-1"))
        body["alerts"][0]["labels"]["team"] = value
        response = intake.post(URL, body, format="json")
        assert response.status_code == 400
        assert response.json()["alerts"] == {"0": {"labels": {"team": [message]}}}, response.json()
        assert not Alert.objects.exists()

    def test_label_values_are_kept_as_sent_and_unstorable_names_replaced(self, intake):
        body = payload("firing", alert(instance=" db-1 "))
        body["alerts"][0]["labels"]["bad\x00name"] = ""
        assert intake.post(URL, body, format="json").status_code == 200
        sent = dict(body["alerts"][0]["labels"])
        sent["bad\ufffdname"] = sent.pop("bad\x00name")
        assert Alert.objects.get().labels == sent  # " db-1 " untrimmed; NUL in a name replaced, not refused


class TestIntake:
    def test_a_firing_alert_opens_an_incident_for_its_service(self, intake, api_service):
        response = intake.post(URL, payload(), format="json")
        assert response.status_code == 200, response.content
        incident = Incident.objects.get()
        assert response.json()["incidents"] == [incident.pk]
        assert (incident.severity, incident.source, incident.title) == ("critical", "alertmanager", "API is down")
        assert list(incident.services.all()) == [api_service]
        stored = Alert.objects.get()
        assert (stored.fingerprint, stored.status, stored.incident, stored.service) == (
            "a1b2c3",
            "firing",
            incident,
            api_service,
        )
        assert stored.ends_at is None
        assert Event.objects.filter(incident=incident, kind="alert", new_value="firing").count() == 1

    def test_a_repeated_delivery_is_the_same_alert_and_incident(self, intake, api_service):
        for _ in range(3):
            intake.post(URL, payload(), format="json")
        assert Incident.objects.count() == 1
        assert Alert.objects.get().receive_count == 3
        assert Event.objects.filter(kind="alert").count() == 1

    def test_alerts_of_one_group_share_one_incident(self, intake, api_service):
        intake.post(
            URL, payload("firing", alert(fingerprint="one"), alert(fingerprint="two", instance="b")), format="json"
        )
        intake.post(URL, payload("firing", alert(fingerprint="three")), format="json")
        assert Incident.objects.count() == 1
        assert Incident.objects.get().alerts.count() == 3

    @pytest.mark.parametrize(
        ("labels", "severity"),
        [
            ({"severity": "critical"}, "critical"),
            ({"severity": "warning"}, "high"),
            ({"severity": "info"}, "low"),
            ({"severity": "warning", "itsm_severity": "medium"}, "medium"),
            ({"severity": "odd"}, "high"),
        ],
    )
    def test_severity_comes_from_the_labels(self, intake, labels, severity):
        intake.post(URL, payload("firing", alert(**labels)), format="json")
        assert Incident.objects.get().severity == severity

    def test_a_more_severe_alert_raises_the_incident(self, intake):
        intake.post(URL, payload("firing", alert(fingerprint="w", severity="warning")), format="json")
        intake.post(URL, payload("firing", alert(fingerprint="c", severity="critical")), format="json")
        assert Incident.objects.get().severity == "critical"

    def test_without_a_group_key_alerts_group_by_alertname_and_service(self, intake):
        intake.post(URL, payload("firing", alert(fingerprint="x1"), group_key=""), format="json")
        intake.post(URL, payload("firing", alert(fingerprint="x2", service="db"), group_key=""), format="json")
        assert Incident.objects.count() == 2

    def test_resolved_alerts_are_marked_and_the_timeline_says_when_all_have_resolved(self, intake, api_service):
        intake.post(URL, payload("firing", alert(fingerprint="one"), alert(fingerprint="two")), format="json")
        intake.post(URL, payload("resolved", alert("resolved", fingerprint="one")), format="json")
        incident = Incident.objects.get()
        assert not Event.objects.filter(incident=incident, note="All alerts of this incident have resolved.").exists()
        intake.post(URL, payload("resolved", alert("resolved", fingerprint="two")), format="json")
        assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}
        assert Event.objects.filter(incident=incident, note="All alerts of this incident have resolved.").exists()
        incident.refresh_from_db()
        assert incident.status == "detected"  # the service does not auto-resolve

    def test_a_service_configured_for_it_resolves_the_incident_with_its_alerts(self, intake, api_service):
        api_service.auto_resolve_incidents = True
        api_service.save()
        intake.post(URL, payload(), format="json")
        response = intake.post(URL, payload("resolved", alert("resolved")), format="json")
        assert response.json()["incidents_resolved"] == 1
        assert Incident.objects.get().status == "resolved"

    def test_an_alert_firing_again_after_its_incident_resolved_opens_a_new_one(self, intake, agent):
        intake.post(URL, payload(), format="json")
        first = Incident.objects.get()
        incident_transition(incident_id=first.pk, actor=agent, to="resolved")
        intake.post(URL, payload(), format="json")
        second = Incident.objects.exclude(pk=first.pk).get()
        assert Alert.objects.get().incident == second

    def test_alerts_are_listed_with_filters(self, intake, as_agent, django_assert_max_num_queries):
        intake.post(URL, payload("firing", *[alert(fingerprint=f"f{n}") for n in range(10)]), format="json")
        intake.post(URL, payload("resolved", alert("resolved", fingerprint="f0")), format="json")
        with django_assert_max_num_queries(4):
            listed = as_agent.get("/api/v1/alerts/", {"status": "firing"})
        assert len(listed.json()["results"]) == 9
        assert as_agent.get("/api/v1/alerts/", {"fingerprint": "f0"}).json()["results"][0]["status"] == "resolved"
        assert as_agent.get("/api/v1/alerts/", {"status": "nope"}).status_code == 400

    def test_requesters_read_no_alerts(self, intake, as_requester):
        intake.post(URL, payload("firing", alert(fingerprint="f0")), format="json")
        assert as_requester.get("/api/v1/alerts/").status_code == 403
        assert as_requester.get(f"/api/v1/alerts/{Alert.objects.get().pk}/").status_code == 403
