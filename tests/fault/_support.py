"""What the concurrency tests (If-Match, Idempotency-Key) share: gunicorn on the test database, and a client that
sends any header. The test database is used as is (django_db(transaction=True)), so the server sees the rows the
test commits and the test sees the server's."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from knox.models import AuthToken

from tests.factories import make_user
from tests.system.processes import BIN, base_env, current_database_url, free_port, started, wait_for


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(method: str, url: str, token: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """One request with the token and any extra headers; the body parsed as JSON when it is JSON."""
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Token {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, dict(error.headers), error.read()
    try:
        return Answer(status, answer_headers, json.loads(raw))
    except ValueError:
        return Answer(status, answer_headers, raw.decode(errors="replace"))


def user_with_token(username: str, role: str) -> tuple[Any, str]:
    user = make_user(username, role)
    _, token = AuthToken.objects.create(user=user)
    return user, token


@contextlib.contextmanager
def live_api(tmp_path: Path, workers: int = 4, threads: int = 4) -> Iterator[str]:
    """gunicorn with several workers (each with threads) on a free loopback port; yields its base URL."""
    port = free_port()
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PORT=str(port),
        ITSM_GUNICORN_WORKERS=str(workers),
        ITSM_VAR_DIR=str(tmp_path / "var"),
    )
    command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py", "--threads", str(threads)]
    log = tmp_path / "gunicorn.log"
    base = f"http://127.0.0.1:{port}"
    with started(command, env, log):
        wait_for(f"{base}/health/", timeout=60)
        yield base
