"""Read-only mode across processes, as deployed: gunicorn with two workers in multiprocess metrics mode, the mode
turned on and off by `manage.py read_only_mode` in processes of their own. Every scrape of /metrics, whichever
worker answers, says what the flag says; a write is refused with the reason given. (/health/ keeps its status: the
read-only detail there is for staff, tests/backups/test_read_only_mode.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.deploy.test_nginx_live import database_url
from tests.system.processes import BIN, PYTHON, ROOT, base_env, free_port, http, started, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

REASON = "moving the database to new disks"


def read_only_mode(env: dict[str, str], *args: str) -> str:
    """What the command printed, without the JSON log lines it writes to the same stdout."""
    out = subprocess.run(
        [PYTHON, "manage.py", "read_only_mode", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return "".join(line for line in out.splitlines(keepends=True) if not line.startswith('{"time": '))


def gauge_values(base: str, scrapes: int = 8) -> set[str]:
    """The value of itsm_read_only_mode on several scrapes (spread over both workers by the kernel)."""
    values = set()
    for _ in range(scrapes):
        status, _, text = http("GET", f"{base}/metrics")
        assert status == 200
        lines = [line for line in text.splitlines() if line.startswith("itsm_read_only_mode ")]
        assert len(lines) == 1, text[-2000:]
        values.add(lines[0].split()[1])
    return values


def test_every_worker_reports_the_mode_that_another_process_turned_on_and_off(tmp_path: Path) -> None:
    port = free_port()
    var, metrics = tmp_path / "var", tmp_path / "metrics"
    common = {"ITSM_VAR_DIR": str(var), "REDIS_URL": str(settings.REDIS_URL), "DATABASE_URL": database_url()}
    env = base_env(**common, PORT=str(port), ITSM_GUNICORN_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(metrics))
    base = f"http://127.0.0.1:{port}"
    command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"]
    with started(command, env, tmp_path / "gunicorn.log"):
        assert wait_for(f"{base}/health/", timeout=60)["status"] == "ok"
        assert gauge_values(base) == {"0.0"}

        # As `docker compose exec backend …` would: the same metrics directory as the API, in a process that ends.
        out = read_only_mode(base_env(**common, PROMETHEUS_MULTIPROC_DIR=str(metrics)), "on", "--reason", REASON)
        assert "read-only mode is on since " in out
        assert gauge_values(base) == {"1.0"}
        # Anonymous callers get the status word only (the reason is for staff, and in every refused write).
        assert http("GET", f"{base}/health/")[2] == {"status": "ok"}
        status, headers, body = http("POST", f"{base}/api/v1/tickets/", {"title": "VPN down"}, token="0" * 64)
        assert (status, headers["Retry-After"], body["code"]) == (503, "60", "read_only_mode")
        assert body["detail"] == f"The platform is read-only: {REASON}. Retry later."

        # Turned off from a shell without the metrics directory: the 1 the other process left must not win.
        assert read_only_mode(base_env(**common), "off").strip() == "read-only mode is off"
        assert gauge_values(base) == {"0.0"}
        assert http("GET", f"{base}/health/")[2] == {"status": "ok"}
