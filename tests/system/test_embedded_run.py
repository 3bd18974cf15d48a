"""`make run` on embedded defaults: SQLite, filesystem broker, local-memory cache; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from tests.system.processes import BIN, PYTHON, ROOT, base_env, free_port, group_alive, http, started, wait_for

pytestmark = pytest.mark.slow


def test_the_platform_starts_serves_runs_the_sla_job_and_stops_cleanly(tmp_path):
    port = free_port()
    env = base_env(
        ITSM_VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        ITSM_GUNICORN_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        ITSM_SLA_AT_RISK_PERCENT="1",
    )
    manage = [PYTHON, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    setup = subprocess.run(
        [*manage, "setup_demo", "--tickets", "20"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    password = re.search(r"admin\s+admin\s+(\S+)", setup.stdout)
    assert password, setup.stdout
    again = subprocess.run([*manage, "setup_demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert password.group(1) not in again.stdout  # printed once only

    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    with started([PYTHON, "scripts/run_platform.py"], env, log) as supervisor:
        health = wait_for(f"{base}/health/", timeout=60)
        assert health["status"] == "ok", health

        status, _, body = http(
            "POST", f"{base}/api/v1/auth/token/", {"username": "admin", "password": password.group(1)}
        )
        assert status == 200, body
        token = body["token"]
        # The checks of each dependency are for staff.
        assert http("GET", f"{base}/health/", token=token)[2]["checks"]["broker"]["status"] == "ok"
        status, _, ticket = http(
            "POST", f"{base}/api/v1/tickets/", {"title": "Embedded smoke", "priority": "critical"}, token
        )
        assert status == 201, ticket

        # At 1 % of a 15-minute target the ticket is at risk after 9 s; the next scan (every 60 s) marks it.
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline:
            _, _, current = http("GET", f"{base}/api/v1/tickets/{ticket['id']}/", token=token)
            if current["sla_status"] == "at_risk":
                break
            time.sleep(2)
        assert current["sla_status"] == "at_risk", log.read_text()[-3000:]

        _, _, metrics = http("GET", f"{base}/metrics")
        assert 'itsm_job_runs_total{job="scan_sla",outcome="succeeded"}' in metrics

        output = log.read_text()
        leaders = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", output)]
        assert len(leaders) == 3
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(timeout=45) == 0
    assert "all stopped" in log.read_text()
    assert not [pid for pid in leaders if group_alive(pid)], "a process group survived Ctrl-C"
    assert BIN.exists()
