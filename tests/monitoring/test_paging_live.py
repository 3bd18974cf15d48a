"""Out-of-band paging through the real Alertmanager (Debian's binary) on loopback, with and without the platform.

Alertmanager runs the real monitoring/alertmanager/alertmanager.yml, rendered for loopback: the smarthost is an
SMTP capture server (tests/mail/smtp_capture.py), the pager webhook and the dead-man's switch a recording HTTP
server of this test (their URLs written in by render-config.sh from secret files, as at the container's start),
the secret files (/run/secrets/...) files in the test's directory, and the waits 1 s. A
critical alert posted to Alertmanager's API must reach on-call by e-mail and by the pager webhook whether the
platform's intake is down (a closed port) or up (the live server, where it also opens exactly one incident).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from itsm.models import Alert, Incident
from tests.system.processes import (
    ALERTMANAGER,
    PYTHON,
    ROOT,
    alertmanager_command,
    base_env,
    eventually,
    free_port,
    http,
    started,
    wait_for,
    wait_for_port,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        ALERTMANAGER is None,
        reason="prometheus-alertmanager is not installed (apt-get install -y prometheus-alertmanager; .ci/run does)",
    ),
]

SECRETS_DIR = "/run/secrets/"
INTAKE_TOKEN = "paging-live-intake-token-0123456789"
SECRETS = {
    "itsm_alertmanager_token": INTAKE_TOKEN,
    "alertmanager_smtp_password": "paging-live-smtp-password",
    "alertmanager_pager_token": "paging-live-pager-token-0123456789",
}
API_DOWN = {
    "labels": {"alertname": "ApiDown", "severity": "critical", "service": "api"},
    "annotations": {
        "summary": "The ITSM API is down",
        "description": "No API replica has answered a Prometheus scrape for 2 minutes.",
        "runbook_url": "docs/runbooks/ApiDown.md",
    },
}
WATCHDOG = {"labels": {"alertname": "Watchdog", "severity": "info", "service": "monitoring"}}


@dataclass
class Recorder:
    """What the loopback webhook server received: (path, headers, JSON body) per POST."""

    calls: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, path: str) -> list[tuple[dict[str, str], Any]]:
        with self.lock:
            return [(headers, body) for got, headers, body in self.calls if got == path]


@contextlib.contextmanager
def webhook_server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            with recorder.lock:
                recorder.calls.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()


def rendered_config(work: Path, intake_url: str, hooks: str, smtp_port: int) -> Path:
    """The real alertmanager.yml as render-config.sh renders it at start from the secret files in `work` (the pager
    and the dead-man's switch at this test's recorder), then loopback addresses for the rest and 1 s waits."""
    source = (ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text()
    secrets = work / "secrets"
    secrets.mkdir()
    urls = {"alertmanager_pager_url": f"{hooks}/pager", "alertmanager_deadman_url": f"{hooks}/ping"}
    for name, value in {**SECRETS, **urls}.items():
        (secrets / name).write_text(value + "\n")
    unrendered = work / "alertmanager.unrendered.yml"
    unrendered.write_text(source.replace(SECRETS_DIR, f"{secrets}/"))
    render = subprocess.run(
        ["sh", str(ROOT / "monitoring" / "alertmanager" / "render-config.sh"), str(unrendered), str(secrets)],
        capture_output=True,
        text=True,
        check=True,
    )
    config = yaml.safe_load(render.stdout)
    config["global"].update(smtp_smarthost=f"127.0.0.1:{smtp_port}", smtp_require_tls=False)
    config["route"].update(group_wait="1s", group_interval="1s")
    for route in config["route"]["routes"]:
        route.update(group_wait="1s", group_interval="1s")
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert set(receivers) == {"itsm-page", "itsm-intake", "oncall-webhook", "deadmans-switch", "oncall-email"}, (
        "a receiver this test does not know: render and assert it"
    )
    for name in ("itsm-page", "itsm-intake"):
        for webhook in receivers[name]["webhook_configs"]:
            webhook["url"] = intake_url
    path = work / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    assert f"{SECRETS_DIR}alertmanager_smtp_password" in source, "the SMTP password is no longer a secret file"
    return path


@dataclass
class Pager:
    alertmanager: str
    hooks: Recorder
    mail: Path

    def fire(self, *alerts: dict[str, Any]) -> None:
        status, _, body = http("POST", f"{self.alertmanager}/api/v2/alerts", list(alerts))
        assert status == 200, body

    def mails(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(path.with_suffix(".eml").read_bytes(), policy=email.policy.default)
            for path in sorted(self.mail.glob("*.json"))
        ]

    def receivers_of(self, alertname: str) -> list[str]:
        _, _, alerts = http("GET", f"{self.alertmanager}/api/v2/alerts")
        return sorted(r["name"] for a in alerts if a["labels"]["alertname"] == alertname for r in a["receivers"])

    def failed_intake_deliveries(self) -> float:
        _, _, text = http("GET", f"{self.alertmanager}/metrics")
        prefix = 'alertmanager_notifications_failed_total{integration="webhook"}'
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


@contextlib.contextmanager
def pager(work: Path, intake_url: str) -> Iterator[Pager]:
    smtp_port, am_port = free_port(), free_port()
    (work / "mail").mkdir()
    with contextlib.ExitStack() as stack:
        hooks_url, recorder = stack.enter_context(webhook_server())
        capture = [PYTHON, "-m", "tests.mail.smtp_capture", str(smtp_port), str(work / "mail")]
        stack.enter_context(started(capture, base_env(), work / "smtp.log"))
        wait_for_port(smtp_port, timeout=20)
        config = rendered_config(work, intake_url, hooks_url, smtp_port)
        command = alertmanager_command(config, work / "data", am_port)
        stack.enter_context(started(command, base_env(), work / "alertmanager.log"))
        wait_for(f"http://127.0.0.1:{am_port}/-/ready", timeout=20)
        yield Pager(f"http://127.0.0.1:{am_port}", recorder, work / "mail")


def assert_paged_out_of_band(page: Pager) -> None:
    mail = eventually(page.mails, 30, "the page arrived by e-mail")[0]
    assert mail["Subject"] == "[ITSM FIRING] ApiDown (api)"
    assert mail["To"] == "oncall@example.com"
    assert "The ITSM API is down" in mail.get_body(("html", "plain")).get_content()
    headers, body = eventually(lambda: page.hooks.to("/pager"), 30, "the page arrived at the pager webhook")[0]
    assert headers["Authorization"] == f"Bearer {SECRETS['alertmanager_pager_token']}"
    assert body["status"] == "firing"
    assert [alert["labels"]["alertname"] for alert in body["alerts"]] == ["ApiDown"]
    assert page.receivers_of("ApiDown") == ["itsm-page", "oncall-email", "oncall-webhook"]


def test_a_critical_alert_reaches_on_call_out_of_band_with_the_platform_stopped(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/api/v1/alerts/alertmanager/"  # nothing listens: no platform
    work = tmp_path / "am"
    work.mkdir()
    try:
        with pager(work, closed) as page:
            page.fire(API_DOWN, WATCHDOG)
            assert_paged_out_of_band(page)
            # The intake path really is down: Alertmanager failed to deliver there.
            eventually(lambda: page.failed_intake_deliveries() > 0, 30, "a failed delivery to the stopped intake")
            # The Watchdog pings the dead-man's switch, and only that.
            headers, ping = eventually(lambda: page.hooks.to("/ping"), 30, "the dead-man's switch was pinged")[0]
            assert [alert["labels"]["alertname"] for alert in ping["alerts"]] == ["Watchdog"]
            assert "Authorization" not in headers
            assert page.receivers_of("Watchdog") == ["deadmans-switch"]
            assert all(body["alerts"][0]["labels"]["alertname"] != "Watchdog" for _, body in page.hooks.to("/pager"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_with_the_platform_running_the_page_also_opens_exactly_one_incident(tmp_path, live_server, settings):
    settings.ITSM_ALERTMANAGER_TOKEN = INTAKE_TOKEN
    work = tmp_path / "am"
    work.mkdir()
    try:
        with pager(work, f"{live_server.url}/api/v1/alerts/alertmanager/") as page:
            page.fire(API_DOWN)
            incident = eventually(
                lambda: Incident.objects.filter(title="The ITSM API is down").first(), 30, "the intake opened it"
            )
            assert_paged_out_of_band(page)
            assert incident.severity == Incident.Severity.CRITICAL
            assert incident.source == Incident.Source.ALERTMANAGER
            assert Incident.objects.count() == 1
            assert list(Alert.objects.values_list("alertname", "incident_id")) == [("ApiDown", incident.pk)]
            assert page.failed_intake_deliveries() == 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
