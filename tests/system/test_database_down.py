"""With PostgreSQL unreachable the API answers JSON 503 with Retry-After, fast, never an HTML 500."""

from __future__ import annotations

import time

import pytest

from tests.system.processes import BIN, base_env, free_port, http, started, wait_for

pytestmark = pytest.mark.slow


def test_health_and_api_answer_json_503_quickly_when_the_database_is_unreachable(tmp_path):
    port = free_port()
    # Nothing listens on port 1: every connection is refused, as when PostgreSQL is stopped.
    env = base_env(
        DATABASE_URL="postgres://postgres@127.0.0.1:1/itsm_db",
        PORT=str(port),
        ITSM_GUNICORN_WORKERS="1",
        ITSM_VAR_DIR=str(tmp_path),
    )
    base = f"http://127.0.0.1:{port}"
    with started(
        [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"], env, tmp_path / "gunicorn.log"
    ):
        body = wait_for(f"{base}/health/", timeout=30, expect=503)
        # The status word only: without the database no token can be checked, so nobody gets the detail.
        assert body == {"status": "down"}

        started_at = time.monotonic()
        status, headers, body = http("GET", f"{base}/health/")
        assert time.monotonic() - started_at < 1
        assert (status, headers["Retry-After"]) == (503, "5")

        for method, path, payload in [
            ("GET", "/api/v1/tickets/", None),
            ("POST", "/api/v1/tickets/", {"title": "x"}),
            ("POST", "/api/v1/auth/token/", {"username": "a", "password": "b"}),
        ]:
            status, headers, body = http(
                method, f"{base}{path}", payload, token="0" * 64 if "tickets" in path else None
            )
            assert status == 503, (path, status, body)
            assert headers["Content-Type"].startswith("application/json"), path
            assert headers["Retry-After"] == "5"
            assert body["code"] == "database_unavailable"
