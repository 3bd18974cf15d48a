"""Prometheus → Alertmanager → the API's intake → an incident, for real, on loopback.

gunicorn serves the API (django-prometheus, multiprocess mode); Debian's `prometheus` and
`prometheus-alertmanager` run configs derived from monitoring/: 1 s intervals, every `for:` shortened to 1 s,
targets moved to loopback ports, Alertmanager's webhook pointed at the gunicorn port with a token file. The
Celery worker target points at a port nobody listens on, so CeleryWorkerDown fires for real (critical, paged);
a test-only always-firing warning proves that warnings arrive as medium incidents (not paged); the Watchdog
reaches the dead-man's switch receiver only. The out-of-band receivers deliver nowhere here (they are tested in
test_paging_live.py). Everything runs in a temporary directory and every process is stopped at the end.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from django.conf import settings
from django.test import override_settings

from itsm.models import Alert, AlertRule, Incident
from itsm.services.alert_rules import alert_rules_evaluate
from tests.system.processes import (
    ALERTMANAGER,
    BIN,
    ROOT,
    alertmanager_command,
    base_env,
    current_database_url,
    eventually,
    free_port,
    http,
    started,
    wait_for,
)

PROMETHEUS = shutil.which("prometheus")
TOKEN = "live-alerting-test-token-0123456789"
METRICS_TOKEN = "live-alerting-metrics-token-0123456789"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        PROMETHEUS is None or ALERTMANAGER is None,
        reason="prometheus or prometheus-alertmanager is not installed (apt-get install -y prometheus "
        "prometheus-alertmanager; .ci/run does)",
    ),
]

INTAKE_RECEIVERS = ("itsm-page", "itsm-intake")
LIVE_WARNING = {
    "alert": "LiveTestWarning",
    "expr": "vector(1)",
    "labels": {"severity": "warning", "service": "live-test"},
    "annotations": {"summary": "A warning of the live test", "description": "Always firing.", "runbook_url": ""},
}


def derived_rules(work: Path) -> None:
    (work / "rules").mkdir()
    for path in sorted((ROOT / "monitoring" / "rules").glob("*.yml")):
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "1s"
        (work / "rules" / path.name).write_text(yaml.safe_dump(rules))
    extra = {"groups": [{"name": "live-test", "interval": "1s", "rules": [LIVE_WARNING]}]}
    (work / "rules" / "live-test.yml").write_text(yaml.safe_dump(extra))


def derived_prometheus(work: Path, api_port: int, worker_port: int, am_port: int) -> Path:
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api, worker = copy.deepcopy(jobs["itsm-api"]), copy.deepcopy(jobs["itsm-worker"])
    for job, port in ((api, api_port), (worker, worker_port)):
        job.pop("dns_sd_configs")
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    # /metrics wants the bearer token: the job reads it from a file, as compose's secret.
    (work / "metrics_token").write_text(METRICS_TOKEN)
    assert api["authorization"]["credentials_file"] == "/run/secrets/itsm_metrics_token"
    api["authorization"]["credentials_file"] = str(work / "metrics_token")
    config["scrape_configs"] = [api, worker]
    assert config["rule_files"] == ["rules/*.yml"]
    derived_rules(work)
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    return work / "prometheus.yml"


def derived_alertmanager(work: Path, api_port: int) -> Path:
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())
    (work / "token").write_text(TOKEN)
    config["route"].update(group_wait="1s", group_interval="1s")
    for route in config["route"]["routes"]:
        route.pop("group_wait", None)
    urls = set()
    for index, receiver in enumerate(config["receivers"]):
        if receiver["name"] not in INTAKE_RECEIVERS:
            # The out-of-band receivers and the dead-man's switch deliver nowhere here (test_paging_live.py).
            config["receivers"][index] = {"name": receiver["name"]}
            continue
        for webhook in receiver.get("webhook_configs", []):
            urls.add(webhook["url"])
            webhook["url"] = f"http://127.0.0.1:{api_port}/api/v1/alerts/alertmanager/"
            webhook["http_config"]["authorization"]["credentials_file"] = str(work / "token")
    # Both receivers share one webhook (a YAML alias): the first visit rewrote it for the second.
    assert "http://backend:8000/api/v1/alerts/alertmanager/" in urls
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
    return work / "alertmanager.yml"


@contextlib.contextmanager
def pipeline(work: Path) -> Iterator[dict[str, int]]:
    ports = {"api": free_port(), "worker": free_port(), "prometheus": free_port(), "alertmanager": free_port()}
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=str(settings.REDIS_URL),
        DJANGO_SECRET_KEY="live-alerting-test-key-0123456789abcdef0123456789abcdef",
        PORT=str(ports["api"]),
        ITSM_BIND_HOST="127.0.0.1",
        ITSM_GUNICORN_WORKERS="2",
        ITSM_VAR_DIR=str(work / "var"),
        ITSM_ALERTMANAGER_TOKEN=TOKEN,
        ITSM_METRICS_TOKEN=METRICS_TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(work / "metrics"),
        XDG_RUNTIME_DIR=str(work / "run"),
    )
    (work / "run").mkdir()
    prometheus_config = derived_prometheus(work, ports["api"], ports["worker"], ports["alertmanager"])
    alertmanager_config = derived_alertmanager(work, ports["api"])
    assert PROMETHEUS is not None
    assert ALERTMANAGER is not None
    with contextlib.ExitStack() as stack:
        gunicorn = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"]
        stack.enter_context(started(gunicorn, env, work / "gunicorn.log"))
        alertmanager = alertmanager_command(alertmanager_config, work / "alertmanager", ports["alertmanager"])
        stack.enter_context(started(alertmanager, base_env(), work / "alertmanager.log"))
        prometheus = [
            PROMETHEUS,
            f"--config.file={prometheus_config}",
            f"--storage.tsdb.path={work / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            # Alerts that fire before Alertmanager is discovered (target updates come in 5 s batches) are
            # dropped and only resent after this delay (1 min by default).
            "--rules.alert.resend-delay=1s",
        ]
        stack.enter_context(started(prometheus, base_env(), work / "prometheus.log"))
        wait_for(f"http://127.0.0.1:{ports['api']}/health/", timeout=30)
        wait_for(f"http://127.0.0.1:{ports['alertmanager']}/-/ready", timeout=15)
        wait_for(f"http://127.0.0.1:{ports['prometheus']}/-/ready", timeout=15)
        yield ports


def query(port: int, promql: str) -> list[dict[str, Any]]:
    status, _, body = http("GET", f"http://127.0.0.1:{port}/api/v1/query?query={quote(promql)}")
    assert status == 200, body
    return list(body["data"]["result"])


def test_a_down_target_becomes_a_paged_incident_through_alertmanager_and_the_intake():
    work = Path(tempfile.mkdtemp(prefix="itsm-alerting-live-"))
    started_at = time.monotonic()
    try:
        with pipeline(work) as ports:
            prometheus = ports["prometheus"]
            # Prometheus scrapes the running API (django-prometheus' metrics, summed over gunicorn workers).
            eventually(lambda: query(prometheus, 'up{job="itsm-api"} == 1'), 20, "the API scraped")
            eventually(
                lambda: query(prometheus, "django_http_requests_total_by_method_total"), 10, "django metrics scraped"
            )
            # The worker target is down for real: CeleryWorkerDown fires, is routed as critical, pages.
            incident = eventually(
                lambda: Incident.objects.filter(title="No Celery worker is running").first(),
                30,
                "CeleryWorkerDown opened an incident through the intake",
            )
            assert incident.severity == Incident.Severity.CRITICAL
            assert incident.source == Incident.Source.ALERTMANAGER
            # Before the first scrape of the worker target the `absent()` branch may fire too (one more label,
            # `job`): another alert of the same group, the same incident.
            alerts = list(Alert.objects.filter(alertname="CeleryWorkerDown"))
            assert alerts
            assert {(a.labels["severity"], a.labels["service"]) for a in alerts} == {("critical", "workers")}
            assert incident.pk in {a.incident_id for a in alerts}
            # A warning is relabelled by Prometheus to itsm_severity=medium: an incident that is not paged.
            warning = eventually(
                lambda: Incident.objects.filter(title="A warning of the live test").first(), 15, "the warning arrived"
            )
            assert warning.severity == Incident.Severity.MEDIUM
            assert Alert.objects.get(alertname="LiveTestWarning").labels["itsm_severity"] == "medium"
            # The Watchdog fires in Prometheus but goes to the dead-man's switch only, never to the intake.
            assert query(prometheus, 'ALERTS{alertname="Watchdog", alertstate="firing"}')

            def watchdog_receivers() -> list[str]:
                _, _, alerts = http("GET", f"http://127.0.0.1:{ports['alertmanager']}/api/v2/alerts")
                return [r["name"] for a in alerts if a["labels"]["alertname"] == "Watchdog" for r in a["receivers"]]

            assert eventually(watchdog_receivers, 10, "the Watchdog reached Alertmanager") == ["deadmans-switch"]
            assert not Alert.objects.filter(alertname="Watchdog").exists()
            assert not Incident.objects.filter(title__startswith="Always firing").exists()

            # The evaluator's PromQL rules ask the same live Prometheus, and fire through the same intake.
            rule = AlertRule.objects.create(
                name="LiveApiScraped",
                probe="promql",
                expression='up{job="itsm-api"}',
                comparison="ge",
                threshold=1,
                severity="warning",
                summary="The API is scraped (live PromQL rule)",
            )
            with override_settings(PROMETHEUS_URL=f"http://127.0.0.1:{prometheus}"):
                assert alert_rules_evaluate()["fired"] == 1
            rule.refresh_from_db()
            assert (rule.state, rule.last_value, rule.last_error) == ("firing", 1.0, "")
            assert Incident.objects.get(title="The API is scraped (live PromQL rule)").source == "rule"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert time.monotonic() - started_at < 60
