"""No secret in any response, oversized bodies refused with JSON, security headers on every kind of page, and the
login lock not dodged behind a proxy. (Related attacks tested elsewhere: login brute force and X-Forwarded-For in
tests/api/test_auth.py, hostile webhook URLs in tests/notifications/test_ssrf.py, `check --deploy` in
tests/test_configuration.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from itsm.models import WebhookEndpoint
from tests.security.conftest import World
from tests.security.routes import OPERATIONS, project_routes
from tests.security.test_route_walker import _urls
from tests.test_configuration import PRODUCTION_ENV, ROOT

pytestmark = pytest.mark.django_db

SECRETS = {
    "SECRET_KEY": "django-secret-key-for-the-leak-test-0123456789abcdefghijklmnopqrstuvwxyz",
    "ITSM_ALERTMANAGER_TOKEN": "alertmanager-token-for-the-leak-test",
    "BACKUP_S3_ACCESS_KEY_ID": "AKIALEAKTESTKEYID000",
    "BACKUP_S3_SECRET_ACCESS_KEY": "s3-secret-access-key-for-the-leak-test",
    "EMAIL_HOST_PASSWORD": "smtp-password-for-the-leak-test",
}


def _every_get_as(client: APIClient, world: World) -> str:
    bodies = []
    for route in project_routes():
        if "GET" not in route.methods or route.format_suffix or route.name == "admin":
            continue
        for url, _ in _urls(route, OPERATIONS[(route.name, "GET")], world):
            response = client.get(url)
            assert response.status_code < 500, (url, response.content[:300])
            streamed = getattr(response, "streaming_content", None)  # a download
            content = b"".join(streamed) if response.streaming and streamed is not None else response.content
            bodies.append(content.decode(errors="replace"))
            bodies.append(json.dumps(dict(response.headers)))
    return "\n".join(bodies)


def test_no_response_to_an_admin_contains_a_secret(world: World, personas: dict[str, APIClient], settings: Any) -> None:
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    endpoint = WebhookEndpoint.objects.create(name="Ops", url="https://93.184.216.34/hook")
    everything = _every_get_as(personas["admin"], world) + _every_get_as(APIClient(), world)
    stored = [
        *get_user_model().objects.values_list("password", flat=True),
        *AuthToken.objects.values_list("digest", flat=True),
        *(f'"{key}"' for key in AuthToken.objects.values_list("token_key", flat=True)),
        endpoint.secret,
        world.rita.secret,  # a user's channel secret is shown to that user only
        world.oscar.secret,
    ]
    leaked = [name for name, value in SECRETS.items() if value in everything]
    leaked += [value[:12] + "…" for value in stored if value and value in everything]
    assert leaked == []
    assert "pbkdf2_" not in everything
    assert "md5$" not in everything


def test_an_oversized_body_is_a_json_413(personas: dict[str, APIClient], settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    big = json.dumps({"title": "Too big", "description": "x" * 200_000})
    for client, url in ((personas["rita"], "/api/v1/tickets/"), (APIClient(), "/api/v1/auth/token/")):
        response = client.post(url, big, content_type="application/json")
        assert response.status_code == 413, (url, response.content[:300])
        assert response.json() == {
            "detail": "The request body is larger than 100000 bytes.",
            "code": "request_too_large",
        }


def test_an_over_long_field_within_the_body_limit_is_a_400_naming_it(personas: dict[str, APIClient]) -> None:
    response = personas["rita"].post("/api/v1/tickets/", {"title": "t", "description": "x" * 20001}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["description"]


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/tickets/", "/health/", "/status/", "/api/docs/", "/nowhere"])
def test_security_headers_are_on_every_kind_of_response(personas: dict[str, APIClient], path: str) -> None:
    response = personas["rita"].get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_behind_one_proxy_a_client_rotating_x_forwarded_for_keeps_its_address_bucket(
    anonymous: APIClient, settings: Any, db: Any
) -> None:
    """With ITSM_NUM_PROXIES=1 the address is the one the proxy appended (the last), not what the client sent."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.ITSM_LOGIN_FAILURES_PER_ADDRESS = 3
    statuses = []
    for number in range(5):
        statuses.append(
            anonymous.post(
                "/api/v1/auth/token/",
                {"username": f"guess{number}", "password": "wrong"},
                format="json",
                HTTP_X_FORWARDED_FOR=f"203.0.113.{number}, 198.51.100.7",
            ).status_code
        )
    assert statuses == [400, 400, 400, 429, 429]


def test_with_the_production_environment_every_response_has_hsts_and_redirects_plain_http(tmp_path: Any) -> None:
    """The deploy settings themselves (ITSM_HTTPS=true), read in a fresh process as production would."""
    script = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='itsm.example.com')\n"
        "s = c.get('/api/v1/', secure=True); p = c.get('/api/v1/')\n"
        "print(json.dumps({'hsts': s.get('Strict-Transport-Security'), 'plain': [p.status_code, p.get('Location')],"
        " 'cookie_secure': __import__('django.conf').conf.settings.SESSION_COOKIE_SECURE}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "ITSM_HTTPS")}
    env.update(PRODUCTION_ENV, ITSM_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="itsm_project.settings")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "hsts": "max-age=31536000; includeSubDomains; preload",
        "plain": [301, "https://itsm.example.com/api/v1/"],
        "cookie_secure": True,
    }


def test_a_null_character_in_any_query_parameter_is_a_400_never_a_500(
    world: World, personas: dict[str, APIClient]
) -> None:
    """PostgreSQL cannot store or compare NUL: schemathesis found ?search=%00 on tickets answering 500."""
    for route in project_routes():
        op = OPERATIONS.get((route.name, "GET"))
        if op is None or op.who not in ("signed_in", "staff") or route.format_suffix:
            continue
        for url, value in _urls(route, op, world):
            if value is not None:
                continue
            for name in ("search", "status", "category", "alertname", "slug", "at", "from"):
                response = personas["admin"].get(f"{url}?{name}=a%00b")
                assert response.status_code in (200, 400), (url, name, response.content[:300])


# Python takes offsets up to ±23:59 and year 1; PostgreSQL refuses offsets past ±15:59 (schemathesis found the 500).
ODD_TIMES = (
    "2020-01-01T00:00-17:31",
    "5102-12-25T21:04:10.2-17:31",
    "0001-01-01T00:00+01:00",
    "9999-12-31T23:00-05:00",
)
TIME_FILTERS = {
    "/api/v1/tickets/": "created_after",
    "/api/v1/incidents/": "detected_before",
    "/api/v1/maintenance-windows/": "starts_after",
    "/api/v1/alerts/": "received_after",
    "/api/v1/notifications/": "created_before",
}


@pytest.mark.parametrize("value", ODD_TIMES)
def test_a_time_filter_with_an_odd_offset_or_year_is_a_200_or_a_400_naming_it(
    personas: dict[str, APIClient], value: str
) -> None:
    for url, name in TIME_FILTERS.items():
        response = personas["admin"].get(url, {name: value})
        assert response.status_code in (200, 400), (url, value, response.content[:300])
        if response.status_code == 400:
            assert list(response.json()) == [name]
