"""Failed sign-ins, tried as an attacker would: counted in the database per account-and-address and per address,
with a doubling wait rather than a lock a stranger can hold, the same on the API, the admin and the portal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from itsm.models import LoginThrottle
from itsm.services.cleanup import cleanup_old_records

TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = "correct-horse-battery"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.20"

pytestmark = pytest.mark.django_db


def login(client: APIClient, username: str, password: str = PASSWORD, address: str = ATTACKER, **extra: Any) -> Any:
    return client.post(
        TOKEN_URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=address, **extra
    )


def admin_sign_in(client: Client, username: str, password: str, address: str = ATTACKER) -> Any:
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def test_past_five_failures_from_one_address_the_right_password_is_not_checked(anonymous, requester, settings):
    for _ in range(5):
        assert login(anonymous, "rita", "wrong-password").status_code == 400
    refused = login(anonymous, "rita")
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many failed logins. Try again later."}
    assert 0 < int(refused["Retry-After"]) <= settings.ITSM_LOGIN_BACKOFF_SECONDS  # what is left of the wait


def test_an_outsider_cannot_keep_the_owner_out_and_waits_longer_after_each_failure(anonymous, requester, settings):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):
            login(anonymous, "rita", "wrong-password")
        assert login(anonymous, "rita", "wrong-password").status_code == 429
        # The owner, from their own address, is not locked out of their account.
        assert login(anonymous, "rita", address=OWNER).status_code == 200
        waits = []
        for _ in range(4):
            retry_after = int(login(anonymous, "rita", "wrong-password")["Retry-After"])
            waits.append(retry_after)
            clock.shift(timedelta(seconds=retry_after))
            assert login(anonymous, "rita", "wrong-password").status_code == 400  # one guess after each wait
        assert waits == [60, 120, 240, 480]
        assert login(anonymous, "rita", address=OWNER).status_code == 200


def test_the_wait_stops_doubling_at_the_maximum(anonymous, requester, settings):
    settings.ITSM_LOGIN_BACKOFF_MAX_SECONDS = 100
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(5):
            login(anonymous, "rita", "wrong-password")
        for expected in (60, 100, 100):
            retry_after = int(login(anonymous, "rita", "wrong-password")["Retry-After"])
            assert retry_after == expected
            clock.shift(timedelta(seconds=retry_after))
            login(anonymous, "rita", "wrong-password")


def test_one_address_guessing_many_accounts_is_stopped_for_every_account(anonymous, requester, settings):
    for number in range(settings.ITSM_LOGIN_FAILURES_PER_ADDRESS):
        assert login(anonymous, f"guess{number}", "wrong").status_code == 400
    assert login(anonymous, "rita").status_code == 429  # a real account, the right password: not checked
    assert login(anonymous, "rita", address=OWNER).status_code == 200


def test_signing_in_to_ones_own_account_does_not_wipe_the_addresss_failures(anonymous, requester, settings):
    settings.ITSM_LOGIN_FAILURES_PER_ADDRESS = 4
    for number in range(3):
        login(anonymous, f"guess{number}", "wrong")
    assert login(anonymous, "rita").status_code == 200
    assert login(anonymous, "guess9", "wrong").status_code == 400  # the fourth failure from this address
    assert login(anonymous, "rita").status_code == 429


def test_a_success_clears_the_accounts_failures_from_that_address(anonymous, requester):
    for _ in range(4):
        login(anonymous, "rita", "wrong-password")
    assert login(anonymous, "rita").status_code == 200
    for _ in range(4):
        assert login(anonymous, "rita", "wrong-password").status_code == 400


def test_failures_are_forgotten_after_a_window_of_quiet(anonymous, requester, settings):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(5):
            login(anonymous, "rita", "wrong-password")
        clock.shift(timedelta(seconds=settings.ITSM_LOGIN_BACKOFF_SECONDS))
        login(anonymous, "rita", "wrong-password")  # the sixth: a 120 s wait
        clock.shift(timedelta(seconds=120 + settings.ITSM_LOGIN_FAILURE_WINDOW_SECONDS))
        for _ in range(4):
            assert login(anonymous, "rita", "wrong-password").status_code == 400  # counting from zero again


def test_the_case_or_width_of_the_name_is_the_same_bucket(anonymous, requester):
    for name in ("rita", "RITA", "Rita", "ｒｉｔａ", "rItA"):
        assert login(anonymous, name, "wrong-password").status_code == 400
    assert login(anonymous, "rita").status_code == 429


def test_sending_x_forwarded_for_does_not_buy_a_fresh_address_bucket(anonymous, db, settings):
    settings.ITSM_LOGIN_FAILURES_PER_ADDRESS = 3
    for number in range(3):
        login(anonymous, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}")
    assert login(anonymous, "someone-else", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429


def test_the_counts_are_rows_that_name_no_account(anonymous, requester):
    login(anonymous, "my-password-typed-as-a-name", "wrong")
    rows = list(LoginThrottle.objects.values_list("key", "scope", "failures"))
    assert sorted(scope for _, scope, _ in rows) == ["account_address", "address"]
    assert all(len(key) == 64 and "password" not in key for key, _, _ in rows)


def test_the_admins_form_is_throttled_with_the_apis_counts(anonymous, admin):
    browser = Client()
    for _ in range(3):
        assert login(anonymous, "adam", "wrong-password").status_code == 400
    for _ in range(2):
        assert admin_sign_in(browser, "adam", "wrong-password").status_code == 200
    refused = admin_sign_in(browser, "adam", PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "Too many failed sign-ins" in refused.content.decode()
    assert browser.get("/admin/").status_code == 302  # not signed in
    assert login(anonymous, "adam").status_code == 429  # and the API sees the admin form's failures
    assert admin_sign_in(Client(), "ADAM", PASSWORD, address=OWNER).status_code == 302  # the owner, elsewhere


def test_the_portal_is_throttled_with_the_apis_counts(anonymous, requester, settings):
    settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT = 3
    browser = Client()
    for _ in range(3):
        response = browser.post("/portal/sign-in/", {"username": "rita", "password": "wrong"}, REMOTE_ADDR=ATTACKER)
        assert response.status_code == 200
    refused = browser.post("/portal/sign-in/", {"username": "rita", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.content.decode()
    assert login(anonymous, "rita").status_code == 429


def test_a_user_signs_in_with_any_case_or_width_of_their_name(anonymous, agent):
    for name in ("alice", "Alice", "ALICE", "ａｌｉｃｅ"):
        assert login(anonymous, name, address=OWNER).status_code == 200, name


def test_the_cleanup_forgets_quiet_buckets_and_keeps_waiting_ones(anonymous, requester, settings):
    settings.ITSM_LOGIN_BACKOFF_SECONDS = 3600
    with time_machine.travel(timezone.now(), tick=False) as clock:
        login(anonymous, "guess", "wrong", address=OWNER)
        for _ in range(5):
            login(anonymous, "rita", "wrong-password")  # the fifth: an hour's wait for rita from this address
        clock.shift(timedelta(seconds=settings.ITSM_LOGIN_FAILURE_WINDOW_SECONDS + 1))
        deleted = cleanup_old_records()["deleted"]["login_throttles"]
    assert deleted == 3  # both of the owner's address, and the attacker's address (under its limit)
    assert list(LoginThrottle.objects.values_list("scope", flat=True)) == ["account_address"]
