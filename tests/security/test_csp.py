"""Every page sends a Content-Security-Policy that allows scripts and styles from the platform's own origin only (no
inline script, no other host); the browser tests (tests/portal, tests/desk, tests/maintenance) fail on any console
message, so a script or style the policy refuses fails them."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def directives(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parsed = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("path", ["/admin/login/", "/portal/sign-in/", "/status/", "/api/v1/tickets/"])
def test_every_page_sends_a_policy_of_its_own_origin_without_inline_scripts(path: str) -> None:
    response = Client().get(path)
    assert response.status_code in (200, 401), response.status_code
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["style-src"]


def test_the_status_page_has_no_inline_style(client: Client) -> None:
    html = client.get("/status/").content.decode()
    assert "<style" not in html
    assert "<script" not in html
    assert "/static/itsm/status.css" in html
