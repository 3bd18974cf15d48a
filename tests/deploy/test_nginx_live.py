"""The real Nginx configuration in front of two gunicorn instances of the API, on loopback.

Debian's nginx runs a rendered copy of nginx/nginx.conf and nginx/nginx-default.conf in a temporary directory:
the upstream `backend:8000` becomes the two gunicorn ports (a private /etc/hosts could map the name to
127.0.0.1, but not to two ports), `listen 80` and `listen 8080` become free ports, and the cache and static
paths move into the directory. Everything else is the file as shipped. Each substitution must match exactly
once, so a change to the real files that the rendering no longer understands fails here loudly.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from knox.models import AuthToken

from tests.factories import make_user
from tests.system.processes import BIN, ROOT, base_env, free_port, started, wait_for

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install -y nginx; .ci/run does)"),
]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        raw = gzip.decompress(self.body) if self.headers.get("Content-Encoding") == "gzip" else self.body
        return json.loads(raw)


@dataclass
class Platform:
    nginx_port: int
    gunicorns: list[tuple[int, subprocess.Popen[bytes]]]
    static_dir: Path
    restart_apis: Callable[[], None]

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None, port: int | None = None
    ) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", port or self.nginx_port, timeout=10)
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()


def database_url() -> str:
    """The pytest database, so the gunicorn processes see the rows the test commits."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}/{db['NAME']}"


def substitute(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the live test's rendering expects exactly one {old!r} in nginx/"
    return text.replace(old, new)


def render_nginx(work: Path, nginx_port: int, status_port: int, upstream_ports: list[int]) -> Path:
    site = (ROOT / "nginx" / "nginx-default.conf").read_text()
    upstreams = "\n    ".join(f"server 127.0.0.1:{port} max_fails=3 fail_timeout=30s;" for port in upstream_ports)
    site = substitute(site, "server backend:8000 max_fails=3 fail_timeout=30s;", upstreams)
    site = substitute(site, "listen 80 default_server;", f"listen 127.0.0.1:{nginx_port} default_server;")
    site = substitute(site, "listen 8080;", f"listen 127.0.0.1:{status_port};")
    site = substitute(site, "alias /srv/static/;", f"alias {work}/static/;")
    (work / "default.conf").write_text(site)
    main = (ROOT / "nginx" / "nginx.conf").read_text()
    main = substitute(main, "include /etc/nginx/conf.d/*.conf;", f"include {work}/default.conf;")
    main = substitute(main, "proxy_cache_path /var/cache/nginx/api", f"proxy_cache_path {work}/cache/api")
    (work / "nginx.conf").write_text(main)
    return work / "nginx.conf"


@contextlib.contextmanager
def gunicorn(port: int, work: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    env = base_env(
        DATABASE_URL=database_url(),
        REDIS_URL=str(settings.REDIS_URL),
        DJANGO_SECRET_KEY="live-nginx-test-key-shared-by-both-instances-0123456789abcdef",
        PORT=str(port),
        ITSM_BIND_HOST="127.0.0.1",
        ITSM_GUNICORN_WORKERS="2",
        ITSM_NUM_PROXIES="1",
        ITSM_VAR_DIR=str(work / f"var-{name}"),
        PROMETHEUS_MULTIPROC_DIR=str(work / f"metrics-{name}"),
        # Each instance its own gunicorn control socket (the default is one per user, in $HOME).
        XDG_RUNTIME_DIR=str(work / f"run-{name}"),
    )
    (work / f"run-{name}").mkdir(exist_ok=True)
    command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"]
    with started(command, env, work / f"gunicorn-{name}.log") as process:
        yield process


@pytest.fixture(scope="module")
def platform(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Platform]:
    assert NGINX is not None
    # Not pytest's tmp_path: nginx's worker processes (nobody, when the test runs as root) must traverse it.
    work = Path(tempfile.mkdtemp(prefix="itsm-nginx-live-"))
    work.chmod(0o755)
    (work / "static").mkdir()
    (work / "cache").mkdir()
    ports = [free_port(), free_port()]
    nginx_port, status_port = free_port(), free_port()
    config = render_nginx(work, nginx_port, status_port, ports)
    nginx_command = [
        NGINX,
        "-p",
        str(work),
        "-c",
        str(config),
        "-e",
        "stderr",
        "-g",
        f"daemon off; pid {work}/nginx.pid;",
    ]
    try:
        with django_db_blocker.unblock(), contextlib.ExitStack() as stack:
            platform = Platform(nginx_port, [], work / "static", lambda: None)

            def start_apis() -> None:
                """Both gunicorns, stopped first by their PIDs when they run: on the same ports, Nginx's upstreams."""
                for _, process in platform.gunicorns:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=30)
                platform.gunicorns = [
                    (port, stack.enter_context(gunicorn(port, work, f"api{i}"))) for i, port in enumerate(ports)
                ]
                for port in ports:
                    wait_for(f"http://127.0.0.1:{port}/health/", timeout=60)

            platform.restart_apis = start_apis
            start_apis()
            subprocess.run(
                [NGINX, "-t", "-q", "-p", str(work), "-c", str(config), "-e", "stderr", "-g", f"pid {work}/nginx.pid;"],
                check=True,
                capture_output=True,
            )
            stack.enter_context(started(nginx_command, dict(os.environ), work / "nginx.log"))
            wait_for(f"http://127.0.0.1:{nginx_port}/health/", timeout=20)
            yield platform
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def fresh_apis(platform: Platform) -> Platform:
    """The platform with both API instances started anew, for a test that writes through them: a process keeps each
    model's content type id once read (the audit trail's rows name it), and the flush between transactional tests
    recreates the content types under new ids, so a process that outlived an earlier write would name one that is
    gone."""
    platform.restart_apis()
    return platform


@pytest.fixture
def agent_token(db: Any) -> str:
    _, token = AuthToken.objects.create(user=make_user("alice", "agent"))
    return str(token)


def test_health_answers_through_nginx_with_its_security_headers(platform):
    response = platform.request("GET", "/health/")
    assert response.status == 200
    assert response.json()["status"] in {"ok", "degraded"}
    assert response.headers["Server"] == "nginx"  # server_tokens off: no version
    assert response.headers.get_all("X-Frame-Options") == ["DENY"]  # once, not Django's and Nginx's
    assert response.headers.get_all("X-Content-Type-Options") == ["nosniff"]
    # /health/ says no-cache: never stored, whoever asks.
    assert platform.request("GET", "/health/").headers.get("X-Cache-Status") != "HIT"


def test_json_is_gzipped(fresh_apis, agent_token):
    platform = fresh_apis
    for number in range(5):
        created = platform.request(
            "POST",
            "/api/v1/tickets/",
            headers={"Authorization": f"Token {agent_token}"},
            body={"title": f"Printer {number} on floor 3 is jammed", "priority": "low"},
        )
        assert created.status == 201, created.body
    listing = platform.request(
        "GET", "/api/v1/tickets/", headers={"Authorization": f"Token {agent_token}", "Accept-Encoding": "gzip"}
    )
    assert listing.status == 200
    assert listing.headers["Content-Type"].startswith("application/json")
    assert listing.headers["Content-Encoding"] == "gzip"
    assert len(listing.json()["results"]) == 5
    schema = platform.request("GET", "/api/schema/?format=json", headers={"Accept-Encoding": "gzip"})
    assert schema.headers["Content-Encoding"] == "gzip"
    assert "openapi" in schema.json()


def test_anonymous_gets_are_cached_and_requests_with_credentials_never(platform, agent_token):
    first = platform.request("GET", "/api/v1/")
    second = platform.request("GET", "/api/v1/")
    assert (first.status, second.status) == (200, 200)
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
    assert first.json() == second.json()

    for credentials in ({"Authorization": f"Token {agent_token}"}, {"Cookie": "sessionid=abc123"}):
        for _ in range(2):
            response = platform.request("GET", "/api/v1/", headers=credentials)
            assert response.status == 200
            assert response.headers["X-Cache-Status"] == "BYPASS", credentials

    # An authenticated answer is never stored for the next anonymous caller.
    assert platform.request("GET", "/api/v1/tickets/", headers={"Authorization": f"Token {agent_token}"}).status == 200
    anonymous = platform.request("GET", "/api/v1/tickets/")
    assert anonymous.status == 401
    assert anonymous.headers["X-Cache-Status"] != "HIT"


def test_metrics_are_refused_through_nginx_but_served_to_prometheus_directly(platform):
    for path in ("/metrics", "/metrics/"):
        response = platform.request("GET", path)
        assert response.status == 404, path
        assert response.json()["code"] == "not_found"
    port, _ = platform.gunicorns[0]
    direct = platform.request("GET", "/metrics", port=port)
    assert direct.status == 200
    assert b"django_http_requests" in direct.body


def test_static_files_are_served_by_nginx(platform):
    (platform.static_dir / "itsm-live-test.css").write_text("body { color: black; }\n")
    response = platform.request("GET", "/static/itsm-live-test.css")
    assert response.status == 200
    assert response.body == b"body { color: black; }\n"
    assert response.headers["Cache-Control"] == "max-age=604800"


def test_an_oversized_body_is_refused_before_it_reaches_the_api(platform):
    connection = http.client.HTTPConnection("127.0.0.1", platform.nginx_port, timeout=10)
    try:
        connection.putrequest("POST", "/api/v1/tickets/")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(11 * 1024 * 1024))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["code"] == "request_too_large"
    finally:
        connection.close()


def raw_get(port: int, path: str, headers: dict[str, str] | None = None) -> Response:
    """A GET sent as written: http.client refuses nothing about its length."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def test_a_request_line_too_long_is_a_json_414_from_nginx_and_from_gunicorn(platform):
    gunicorn_port, _ = platform.gunicorns[0]
    long_path = "/api/v1/tickets/?search=" + "x" * 9000
    for port, code in ((platform.nginx_port, "uri_too_long"), (gunicorn_port, "uri_too_long")):
        response = raw_get(port, long_path)
        assert response.status == 414, (port, response.body[:200])
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["code"] == code
    # Within Nginx's 8 KB, a long line reaches the API (which asks for a token) through Nginx and gunicorn alike.
    within = "/api/v1/tickets/?search=" + "x" * 7000
    assert raw_get(platform.nginx_port, within).status == 401
    assert raw_get(gunicorn_port, within).status == 401


def test_a_header_too_large_is_a_json_error_from_nginx_and_from_gunicorn(platform):
    gunicorn_port, _ = platform.gunicorns[0]
    huge = {"X-Padding": "y" * 20000}
    through_nginx = raw_get(platform.nginx_port, "/health/", huge)
    assert (through_nginx.status, through_nginx.json()["code"]) == (400, "bad_request")
    direct = raw_get(gunicorn_port, "/health/", huge)
    assert direct.status in (400, 431)
    assert direct.headers["Content-Type"] == "application/json"
    assert "detail" in direct.json()


def test_login_attempts_are_rate_limited_per_address(platform):
    """Twelve attempts at once: Nginx decides each before it proxies, so how long the API takes to refuse a password
    (one token refills every 6 s) cannot let a seventh through, as it could when they were sent one by one."""

    def attempt(number: int) -> Response:
        body = {"username": f"nobody{number}", "password": "wrong-password"}
        return platform.request("POST", "/api/v1/auth/token/", body=body)

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(attempt, range(12)))
    statuses = sorted(response.status for response in responses)
    # 1 + a burst of 5 pass to the API (which refuses the credentials); the rest stop at Nginx.
    assert statuses == [400] * 6 + [429] * 6, statuses
    for response in responses:
        if response.status == 429:
            assert response.json()["code"] == "rate_limited"
            assert response.headers["Retry-After"] == "60"


def test_requests_still_succeed_with_one_gunicorn_killed(fresh_apis, agent_token):
    platform = fresh_apis
    _, process = platform.gunicorns[0]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    statuses = [platform.request("GET", "/health/").status for _ in range(20)]
    assert statuses == [200] * 20
    created = platform.request(
        "POST",
        "/api/v1/tickets/",
        headers={"Authorization": f"Token {agent_token}"},
        body={"title": "Created while one API instance is down", "priority": "low"},
    )
    assert created.status == 201, created.body
    started_at = time.monotonic()
    assert platform.request("GET", "/api/v1/tickets/", headers={"Authorization": f"Token {agent_token}"}).status == 200
    assert time.monotonic() - started_at < 2

    # With both gone, Nginx answers JSON itself.
    _, last = platform.gunicorns[1]
    os.killpg(last.pid, signal.SIGKILL)
    last.wait(timeout=10)
    response = platform.request("GET", "/api/v1/tickets/", headers={"Authorization": f"Token {agent_token}"})
    assert response.status == 502
    assert response.json()["code"] == "upstream_unavailable"
