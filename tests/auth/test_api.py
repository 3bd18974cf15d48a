"""Tokens: obtained with a password, stored hashed, expiring, revocable; failed logins throttled."""

from __future__ import annotations

import time
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
class TestLoginThrottling:
    def test_an_account_is_locked_after_five_failures_even_with_the_right_password(self, anonymous, requester):
        for _ in range(5):
            assert login(anonymous, "rita", "wrong-password").status_code == 400
        blocked = login(anonymous, "rita")
        assert blocked.status_code == 429
        assert int(blocked["Retry-After"]) > 0
        assert "detail" in blocked.json()

    def test_the_account_limit_holds_across_client_addresses(self, anonymous, requester):
        for number in range(5):
            login(anonymous, "rita", "wrong-password", REMOTE_ADDR=f"10.0.0.{number}")
        assert login(anonymous, "rita", REMOTE_ADDR="10.0.0.99").status_code == 429

    def test_sending_x_forwarded_for_does_not_buy_a_fresh_address_bucket(self, anonymous, db, settings):
        settings.ITSM_LOGIN_FAILURES_PER_ADDRESS = 3
        for number in range(3):
            login(anonymous, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}")
        response = login(anonymous, "someone-else", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7")
        assert response.status_code == 429

    def test_other_accounts_and_addresses_are_unaffected(self, anonymous, requester, other_requester):
        for _ in range(5):
            login(anonymous, "rita", "wrong-password")
        assert login(anonymous, "oscar").status_code == 200

    def test_the_lock_lifts_after_the_window(self, anonymous, requester, settings):
        # The window starts at the first failure and must outlast the six sign-ins, however busy the machine (with
        # 1 s, six sign-ins on a loaded CI machine outlasted it and the sixth was let in).
        settings.ITSM_LOGIN_FAILURE_WINDOW_SECONDS = 3
        for _ in range(5):
            login(anonymous, "rita", "wrong-password")
        assert login(anonymous, "rita").status_code == 429
        time.sleep(3.2)  # the counters are Redis keys with the window as their TTL
        assert login(anonymous, "rita").status_code == 200


@pytest.mark.django_db
def test_add_user_role_decides_what_the_token_may_do(anonymous, client_for):
    make_user("zed", "agent")
    token = login(anonymous, "zed").json()["token"]
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = anonymous.post("/api/v1/services/", {"name": "VPN", "slug": "vpn"}, format="json")
    assert response.status_code == 403
