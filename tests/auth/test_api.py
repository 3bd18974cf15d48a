"""Tokens: obtained with a password, stored hashed, expiring, revocable (throttling: test_throttling.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import make_user

TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = "correct-horse-battery"


def login(client: APIClient, username: str, password: str = PASSWORD, **extra: Any):
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


@pytest.mark.django_db
class TestTokens:
    def test_a_token_signs_requests_and_is_stored_only_as_a_hash(self, anonymous, requester):
        response = login(anonymous, "rita")
        assert response.status_code == 200, response.content
        token = response.json()["token"]
        assert response.json()["expiry"]
        stored = AuthToken.objects.get(user=requester)
        assert token not in (stored.digest, stored.token_key)
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert anonymous.get("/api/v1/tickets/").status_code == 200

    @pytest.mark.parametrize("token", ["abc\x00defgh", "\xff\xfe\xfd", "a" * 300, "é" * 20])
    def test_a_malformed_token_is_a_json_401(self, anonymous, token):
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = anonymous.get("/api/v1/tickets/")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"

    def test_a_wrong_password_is_400_without_saying_which_part_was_wrong(self, anonymous, requester):
        response = login(anonymous, "rita", "wrong-password")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["Unable to log in with these credentials."]}
        assert login(anonymous, "nobody").json() == response.json()

    def test_missing_fields_are_reported_per_field(self, anonymous):
        response = anonymous.post(TOKEN_URL, {}, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"username", "password"}

    def test_a_deactivated_user_cannot_log_in(self, anonymous, requester):
        requester.is_active = False
        requester.save()
        assert login(anonymous, "rita").status_code == 400

    def test_logout_revokes_the_token(self, anonymous, requester):
        token = login(anonymous, "rita").json()["token"]
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert anonymous.post("/api/v1/auth/logout/").status_code == 204
        assert anonymous.get("/api/v1/tickets/").status_code == 401
        assert not AuthToken.objects.filter(user=requester).exists()

    def test_tokens_expire(self, anonymous, requester, settings):
        token = login(anonymous, "rita").json()["token"]
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        with time_machine.travel(timezone.now() + timedelta(hours=11)):
            assert anonymous.get("/api/v1/tickets/").status_code == 401

    def test_a_garbage_token_is_401_json(self, anonymous):
        anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-token")
        response = anonymous.get("/api/v1/tickets/")
        assert response.status_code == 401
        assert "detail" in response.json()


@pytest.mark.django_db
def test_add_user_role_decides_what_the_token_may_do(anonymous, client_for):
    make_user("zed", "agent")
    token = login(anonymous, "zed").json()["token"]
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = anonymous.post("/api/v1/services/", {"name": "VPN", "slug": "vpn"}, format="json")
    assert response.status_code == 403
