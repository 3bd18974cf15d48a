"""While a window runs: an Alertmanager silence per affected service (against a real HTTP server on loopback that
records what it is sent), and alerts that still reach the intake are recorded without an incident or a page."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from itsm.models import Alert, Incident, MaintenanceWindow, Notification, Service
from itsm.services.maintenance_lifecycle import maintenance_tick, maintenance_transition
from tests.alerts.test_intake import TOKEN, URL, alert, payload
from tests.maintenance.conftest import START

Status = MaintenanceWindow.Status


class RecordingAlertmanager(ThreadingHTTPServer):
    """Alertmanager's silence endpoints as far as we use them, recording every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, Any]] = []
        self.silences: dict[str, dict[str, Any]] = {}
        # What GET /api/v2/alerts answers (Alertmanager) and GET /api/v1/query (Prometheus), by service / query.
        self.firing: dict[str, list[dict[str, Any]]] = {}
        self.query_results: dict[str, list[dict[str, Any]]] = {}
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: RecordingAlertmanager

    def _reply(self, code: int, body: Any = None) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(("POST", self.path, body))
        if self.path != "/api/v2/silences":
            return self._reply(404)
        silence_id = f"silence-{len(self.server.silences) + 1}"
        self.server.silences[silence_id] = {**body, "state": "active"}
        return self._reply(200, {"silenceID": silence_id})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.server.requests.append(("GET", self.path, query))
        if url.path == "/api/v2/alerts":
            service = query["filter"][0].removeprefix('service="').removesuffix('"')
            return self._reply(200, self.server.firing.get(service, []))
        if url.path == "/api/v1/query":
            result = self.server.query_results.get(query["query"][0], [])
            return self._reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})
        return self._reply(404)

    def do_DELETE(self) -> None:
        self.server.requests.append(("DELETE", self.path, None))
        silence_id = self.path.removeprefix("/api/v2/silence/")
        if silence_id not in self.server.silences:
            return self._reply(404)
        self.server.silences[silence_id]["state"] = "expired"
        return self._reply(200)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def alertmanager(settings: Any) -> Iterator[RecordingAlertmanager]:
    """Serves Alertmanager's and Prometheus' endpoints we use, on one loopback port."""
    server = RecordingAlertmanager()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ALERTMANAGER_URL = server.url
    settings.PROMETHEUS_URL = server.url
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api_service(database_service: Service) -> Service:
    return Service.objects.create(name="API", slug="api", team=database_service.team)


def active(server: RecordingAlertmanager) -> list[str]:
    return sorted(s["matchers"][0]["value"] for s in server.silences.values() if s["state"] == "active")


def test_a_running_window_silences_each_affected_service_and_expires_them_when_it_completes(
    make_window, alertmanager, api_service, database_service
):
    window = make_window(backup_required=False, services=[database_service, api_service], verify_for=timedelta(0))
    maintenance_tick(now=START)
    window.refresh_from_db()
    assert window.status == Status.IN_PROGRESS
    assert active(alertmanager) == ["api", "database"]
    assert sorted(window.silence_ids) == sorted(alertmanager.silences)
    posted = alertmanager.requests[0][2]
    assert posted["matchers"] == [{"name": "service", "value": "api", "isRegex": False, "isEqual": True}]
    assert posted["createdBy"] == "itsm"
    assert posted["endsAt"] == (window.ends_at + timedelta(hours=1)).isoformat()  # the margin, no verification
    assert f"MW-{window.pk}" in posted["comment"]
    assert f"/api/v1/maintenance-windows/{window.pk}/" in posted["comment"]

    maintenance_tick(now=START + timedelta(minutes=30))
    window.refresh_from_db()
    assert window.status == Status.COMPLETED
    assert active(alertmanager) == []
    assert window.silence_ids == []
    deletes = sorted(path for method, path, _ in alertmanager.requests if method == "DELETE")
    assert deletes == sorted(f"/api/v2/silence/{silence_id}" for silence_id in alertmanager.silences)


def test_a_window_cancelled_while_blocked_expires_nothing_it_never_made(make_window, alertmanager, agent):
    window = make_window(backup_required=False)
    maintenance_transition(window_id=window.pk, actor=agent, to=Status.CANCELLED)
    assert alertmanager.requests == []


def test_silences_made_are_expired_when_the_window_is_cancelled(make_window, alertmanager, agent):
    window = make_window(backup_required=False)
    maintenance_tick(now=START)
    assert active(alertmanager) == ["database"]
    MaintenanceWindow.objects.filter(pk=window.pk).update(status=Status.SCHEDULED)  # as if it was retried
    maintenance_transition(window_id=window.pk, actor=agent, to=Status.CANCELLED)
    assert active(alertmanager) == []


def test_a_window_that_does_not_silence_alerts_makes_no_silence(make_window, alertmanager):
    make_window(backup_required=False, silence_alerts=False)
    maintenance_tick(now=START)
    assert alertmanager.requests == []


def test_an_unreachable_alertmanager_does_not_stop_the_maintenance(make_window, settings):
    settings.ALERTMANAGER_URL = "http://127.0.0.1:9"  # the discard port: nothing listens
    window = make_window(backup_required=False)
    maintenance_tick(now=START)
    window.refresh_from_db()
    assert window.status == Status.IN_PROGRESS
    assert window.silence_ids == []


@pytest.fixture
def intake(anonymous: Any, settings: Any) -> Any:
    settings.ITSM_ALERTMANAGER_TOKEN = TOKEN
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return anonymous


def test_an_alert_for_a_service_under_maintenance_is_recorded_but_pages_nobody(
    make_window, intake, api_service, database_service
):
    make_window(backup_required=False, services=[api_service])
    with time_machine.travel(START, tick=False):
        maintenance_tick()
    pages_before = Notification.objects.filter(urgent=True).count()
    response = intake.post(URL, payload("firing", alert()), format="json")
    assert response.status_code == 200
    assert response.data["alerts_under_maintenance"] == 1
    assert response.data["incidents_opened"] == 0
    recorded = Alert.objects.get()
    assert recorded.service == api_service
    assert recorded.incident is None
    assert Incident.objects.count() == 0
    assert Notification.objects.filter(urgent=True).count() == pages_before

    other = intake.post(URL, payload("firing", alert(fingerprint="db1", service="database")), format="json")
    assert other.data["incidents_opened"] == 1  # the database is not under maintenance


def test_after_the_window_the_same_alert_opens_an_incident_again(make_window, intake, api_service):
    make_window(backup_required=False, services=[api_service], verify_for=timedelta(0))
    maintenance_tick(now=START)
    intake.post(URL, payload("firing", alert()), format="json")
    maintenance_tick(now=START + timedelta(minutes=30))
    response = intake.post(URL, payload("firing", alert()), format="json")
    assert response.data["incidents_opened"] == 1
    assert Alert.objects.get().incident is not None


CHECKS = [{"kind": "api_health"}, {"kind": "no_firing_alerts"}, {"kind": "promql", "expr": 'up{job="api"}'}]
UP = [{"metric": {"job": "api"}, "value": [1893456000, "1"]}]


def test_an_alert_still_firing_at_the_end_fails_verification_and_opens_exactly_one_incident(make_window, alertmanager):
    window = make_window(backup_required=False, checks=CHECKS)
    alertmanager.query_results['up{job="api"}'] = UP
    maintenance_tick(now=START)
    alertmanager.firing["database"] = [{"labels": {"alertname": "DatabaseDown", "service": "database"}}]
    maintenance_tick(now=START + timedelta(minutes=30))
    maintenance_tick(now=START + timedelta(minutes=31))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    results = {result["kind"]: result for result in window.verification["results"]}
    assert results["no_firing_alerts"]["ok"] is False
    assert "DatabaseDown (database)" in results["no_firing_alerts"]["error"]
    assert results["promql"]["ok"] is True
    assert results["api_health"]["ok"] is True
    incident = Incident.objects.get()
    assert incident.severity == Incident.Severity.HIGH
    assert "failed its checks" in incident.title
    assert active(alertmanager) == []  # the silences are gone, so the alert pages again
    asked = [query for method, path, query in alertmanager.requests if path.startswith("/api/v2/alerts")]
    assert asked[0]["filter"] == ['service="database"']


def test_all_checks_passing_on_every_run_of_the_period_complete_the_window(make_window, alertmanager):
    window = make_window(backup_required=False, checks=CHECKS, verify_for=timedelta(minutes=2))
    alertmanager.query_results['up{job="api"}'] = UP
    maintenance_tick(now=START)
    maintenance_tick(now=START + timedelta(minutes=30))
    maintenance_tick(now=START + timedelta(minutes=31))
    window.refresh_from_db()
    assert window.status == Status.VERIFYING
    assert active(alertmanager) == ["database"]  # still quiet while the checks run
    maintenance_tick(now=START + timedelta(minutes=32))
    window.refresh_from_db()
    assert window.status == Status.COMPLETED
    assert window.verification["runs"] == 3
    assert all(result["ok"] for result in window.verification["results"])
    assert active(alertmanager) == []
    queries = [path for method, path, _ in alertmanager.requests if path.startswith("/api/v1/query")]
    assert len(queries) == 3


@pytest.mark.parametrize(
    ("result", "error"),
    [([], "returned nothing"), ([{"metric": {}, "value": [1893456000, "0"]}], "a sample is 0")],
)
def test_a_promql_expression_that_does_not_hold_fails_verification(make_window, alertmanager, result, error):
    window = make_window(backup_required=False, checks=[{"kind": "promql", "expr": "up"}])
    alertmanager.query_results["up"] = result
    maintenance_tick(now=START)
    maintenance_tick(now=START + timedelta(minutes=30))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    assert error in window.verification["results"][0]["error"]


def test_checks_against_unset_urls_fail_rather_than_pass(make_window, settings):
    settings.ALERTMANAGER_URL = settings.PROMETHEUS_URL = ""
    window = make_window(backup_required=False, checks=CHECKS)
    maintenance_tick(now=START)
    maintenance_tick(now=START + timedelta(minutes=30))
    window.refresh_from_db()
    assert window.status == Status.VERIFICATION_FAILED
    assert [r["ok"] for r in window.verification["results"]] == [True, False, False]
