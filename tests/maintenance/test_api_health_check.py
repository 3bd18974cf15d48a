"""A window's api_health check calls the API over HTTP at ITSM_API_HEALTH_URL, as a user's request would arrive.

It passes against the real /health/ of a live server and fails, with a reason a person can act on, against a
real HTTP server answering 503, one answering 200 with another body, and a port where nothing listens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from itsm.models import Incident, MaintenanceWindow
from itsm.services.maintenance_lifecycle import maintenance_tick
from tests.maintenance.conftest import START
from tests.system.processes import free_port

Status = MaintenanceWindow.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def answering() -> Iterator[Callable[[int, bytes], str]]:
    """A real HTTP server on loopback that answers every GET with the given status and body."""
    servers: list[ThreadingHTTPServer] = []

    def serve(status: int, body: bytes) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/health/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def verify(make_window: Callable[..., MaintenanceWindow]) -> MaintenanceWindow:
    window = make_window(backup_required=False)
    maintenance_tick(now=START)
    maintenance_tick(now=START + timedelta(minutes=30))
    window.refresh_from_db()
    return window


def api_health(window: MaintenanceWindow) -> dict[str, Any]:
    return next(result for result in window.verification["results"] if result["kind"] == "api_health")


def test_the_check_passes_on_the_real_apis_health_answer(make_window, api_health_served):
    window = verify(make_window)
    assert window.status == Status.VERIFYING
    assert api_health(window) == {"kind": "api_health", "ok": True}


def test_a_503_fails_the_check_and_opens_an_incident(make_window, settings, answering):
    settings.ITSM_API_HEALTH_URL = answering(503, b'{"status": "down"}')
    window = verify(make_window)
    assert window.status == Status.VERIFICATION_FAILED
    assert api_health(window)["ok"] is False
    assert api_health(window)["error"] == f'{settings.ITSM_API_HEALTH_URL} answered 503: b\'{{"status": "down"}}\''
    assert "failed its checks" in Incident.objects.get().title


def test_a_200_without_status_ok_fails_the_check(make_window, settings, answering):
    settings.ITSM_API_HEALTH_URL = answering(200, b"<html>Welcome to nginx!</html>")
    window = verify(make_window)
    assert window.status == Status.VERIFICATION_FAILED
    assert api_health(window)["error"].endswith("answered 200 with status None, not 200 with status 'ok'")


def test_a_port_where_nothing_listens_fails_the_check(make_window, settings):
    settings.ITSM_API_HEALTH_URL = f"http://127.0.0.1:{free_port()}/health/"
    window = verify(make_window)
    assert window.status == Status.VERIFICATION_FAILED
    assert "is unreachable: [Errno 111] Connection refused" in api_health(window)["error"]


def test_a_url_that_is_not_http_fails_the_check_without_being_opened(make_window, settings):
    settings.ITSM_API_HEALTH_URL = "file:///etc/passwd"
    window = verify(make_window)
    assert api_health(window)["error"] == "ITSM_API_HEALTH_URL 'file:///etc/passwd' is not an http:// or https:// URL"
