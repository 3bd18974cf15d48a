"""50 concurrent deliveries of one Alertmanager payload against a live server collapse into one incident."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings

from itsm.models import Alert, Incident
from tests.alerts.test_intake import TOKEN, alert, payload
from tests.factories import ServiceFactory
from tests.system.processes import BIN, base_env, current_database_url, free_port, http, started, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_fifty_concurrent_deliveries_make_one_incident_and_one_alert_per_fingerprint(tmp_path):
    ServiceFactory.create(slug="api", name="API")
    port = free_port()
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=settings.REDIS_URL,
        ITSM_ALERTMANAGER_TOKEN=TOKEN,
        PORT=str(port),
        ITSM_GUNICORN_WORKERS="4",
        ITSM_VAR_DIR=str(tmp_path),
    )
    command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py", "--threads", "4"]
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/v1/alerts/alertmanager/"
    headers_token = TOKEN
    body = payload("firing", alert(fingerprint="fp-1"), alert(fingerprint="fp-2", instance="b"))
    with started(command, env, tmp_path / "gunicorn.log"):
        wait_for(f"{base}/health/", timeout=30)

        def deliver(attempt: int) -> int:
            status, _, answer = http("POST", url, body, timeout=30, bearer=headers_token)
            assert status == 200, (attempt, answer)
            return status

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(deliver, range(50)))
        assert statuses == [200] * 50
        assert Incident.objects.count() == 1
        assert sorted(Alert.objects.values_list("fingerprint", flat=True)) == ["fp-1", "fp-2"]
        assert sum(Alert.objects.values_list("receive_count", flat=True)) == 100

        resolved = payload("resolved", alert("resolved", fingerprint="fp-1"), alert("resolved", fingerprint="fp-2"))
        status, _, _ = http("POST", url, resolved, bearer=headers_token)
        assert status == 200
        assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}
        assert Incident.objects.get().events.filter(note="All alerts of this incident have resolved.").count() == 1
