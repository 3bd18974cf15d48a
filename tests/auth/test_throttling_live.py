"""Sign-in throttling tried as an attacker would, against servers of the test's own: ten guesses at once at a live
gunicorn (two workers of five threads, the real password hasher) get no more checks than the limit, and with the
cache's Redis killed the limits hold on the API and on the admin's form alike."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from rest_framework.test import APIClient

from tests.deploy.test_nginx_live import database_url
from tests.factories import make_user
from tests.system.processes import (
    BIN,
    REDIS_SERVER,
    base_env,
    free_port,
    http,
    redis_server,
    started,
    wait_for,
    wait_for_port,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server: apt-get install redis-server"),
]

PASSWORD = "correct-horse-battery"
# Django's default hasher, hundreds of thousands of rounds: each check takes long enough for guesses to overlap.
SLOW_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def guess(base: str, username: str, password: str, address: str) -> tuple[int, dict[str, str], Any]:
    body = {"username": username, "password": password}
    return http("POST", f"{base}/api/v1/auth/token/", body, timeout=60, headers={"X-Forwarded-For": address})


def checked_failures(base: str) -> float:
    """The server's own count of passwords checked and found wrong (summed over the workers)."""
    status, _, text = http("GET", f"{base}/metrics")
    assert status == 200
    lines = [line for line in text.splitlines() if line.startswith('itsm_login_failures_total{reason="credentials"}')]
    return float(lines[0].split()[1]) if lines else 0.0


def at_once(count: int, call: Any) -> list[Any]:
    """`count` calls released together from threads of their own."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.mark.django_db(transaction=True)
def test_ten_parallel_guesses_at_a_live_server_get_five_checks_and_redis_dying_lifts_no_limit(
    tmp_path: Path, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = SLOW_HASHERS  # the users' hashes as production stores them
    make_user("rita")
    make_user("adam", "admin")
    port, redis_port = free_port(), free_port()
    with redis_server(redis_port, tmp_path, tmp_path / "redis.log") as cache:
        cache.start()
        wait_for_port(redis_port, timeout=20)
        env = base_env(
            DATABASE_URL=database_url(),
            REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            PORT=str(port),
            ITSM_VAR_DIR=str(tmp_path / "var"),
            ITSM_NUM_PROXIES="1",  # as behind Nginx: the address is the X-Forwarded-For the test sends
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        )
        command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py", "--workers=2", "--threads=5"]
        base = f"http://127.0.0.1:{port}"
        with started(command, env, tmp_path / "gunicorn.log"):
            # Up (a cache check timing out on a loaded machine makes it "degraded", which changes nothing here).
            assert wait_for(f"{base}/health/", timeout=60)["status"] in {"ok", "degraded"}

            statuses = at_once(10, lambda: guess(base, "rita", "wrong-password", "203.0.113.1")[0])
            assert sorted(statuses) == [400] * 5 + [429] * 5
            assert checked_failures(base) == 5  # five passwords hashed and compared, not eight
            assert guess(base, "rita", PASSWORD, "203.0.113.1")[0] == 429
            assert guess(base, "rita", PASSWORD, "198.51.100.2")[0] == 200  # the owner, elsewhere

            cache.stop()  # SIGTERM to our own redis-server, by its PID
            statuses = [guess(base, "adam", f"wrong-{number}", "203.0.113.3")[0] for number in range(25)]
            assert statuses == [400] * 5 + [429] * 20
            status, headers, _ = guess(base, "adam", PASSWORD, "203.0.113.3")
            assert status == 429
            assert 0 < int(headers["Retry-After"]) <= 60  # what is left of the first wait
            assert guess(base, "adam", PASSWORD, "198.51.100.4")[0] == 200


@pytest.mark.django_db
def test_with_the_cache_redis_killed_the_api_and_the_admins_form_stay_throttled(tmp_path: Path, admin: Any, settings):
    redis_port = free_port()
    with redis_server(redis_port, tmp_path, tmp_path / "redis.log") as cache:
        cache.start()
        wait_for_port(redis_port, timeout=20)
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{redis_port}/0"}}
        caches["default"].set("probe", "up")
        assert caches["default"].get("probe") == "up"

        cache.kill_group()  # SIGKILL, mid-test
        assert caches["default"].get("probe") is None  # the cache is gone (its errors ignored)

        api = APIClient()
        for number in range(25):
            response = api.post(
                "/api/v1/auth/token/", {"username": "adam", "password": f"wrong-{number}"}, format="json"
            )
            assert response.status_code == (400 if number < 5 else 429)
        assert api.post("/api/v1/auth/token/", {"username": "adam", "password": PASSWORD}).status_code == 429

        browser = Client()
        refused = browser.post("/admin/login/", {"username": "adam", "password": PASSWORD, "next": "/admin/"})
        assert refused.status_code == 429
        assert browser.get("/admin/").status_code == 302
