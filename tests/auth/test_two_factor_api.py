"""POST /api/v1/auth/token/ for a user with two factors: the `otp` field, a 400 per field when it is missing or
wrong, wrong codes throttled with wrong passwords, and admins without an app refused while the setting is on."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.auth.two_factor import PASSWORD, START, STEP, app_code, enrol

TOKEN_URL = "/api/v1/auth/token/"
ADDRESS = "203.0.113.7"

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def login(username: str, password: str = PASSWORD, **fields: Any) -> Any:
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password, **fields}, format="json", REMOTE_ADDR=ADDRESS
    )


def test_a_user_with_an_app_gets_a_token_only_with_a_code(agent, clock):
    device, codes = enrol(agent)
    clock.shift(STEP)

    missing = login("alice")
    blank = login("alice", otp="")
    wrong = login("alice", otp=f"{(int(app_code(device)) + 1) % 1_000_000:06d}")
    right = login("alice", otp=app_code(device))
    recovery = login("alice", otp=codes[0])

    assert (missing.status_code, missing.json()) == (
        400,
        {"otp": ["Enter the code from your authenticator app, or one of your recovery codes."]},
    )
    assert blank.json() == missing.json()
    assert (wrong.status_code, wrong.json()) == (400, {"otp": ["This code is wrong, expired or already used."]})
    assert right.status_code == 200
    assert "token" in right.json()
    assert recovery.status_code == 200
    assert login("alice", otp=codes[0]).json() == {"otp": ["This code is wrong, expired or already used."]}


def test_a_wrong_password_says_nothing_about_a_second_factor(agent, clock):
    enrol(agent)

    response = login("alice", "wrong-password", otp="123456")

    assert (response.status_code, response.json()) == (
        400,
        {"non_field_errors": ["Unable to log in with these credentials."]},
    )


def test_an_otp_that_is_not_a_string_or_too_long_is_a_field_error(agent):
    assert login("alice", otp=["123456"]).json() == {"otp": ["Not a valid string."]}
    assert "otp" in login("alice", otp="1" * 65).json()


def test_a_user_without_an_app_gets_a_token_as_before_whatever_the_otp(agent, requester):
    assert login("alice").status_code == 200
    assert login("rita", otp="123456").status_code == 200


def test_guessing_codes_is_throttled_like_guessing_passwords(agent, settings, clock):
    settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT = 4
    device, _ = enrol(agent)
    clock.shift(STEP)
    right = app_code(device)
    guesses = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(1, 4)]

    answers = [login("alice", otp=guess).status_code for guess in guesses]
    # A right password with no code gives no attempt back: it would reset the count between guesses.
    answers.append(login("alice").status_code)
    refused = login("alice", otp=right)

    assert answers == [400, 400, 400, 400]
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many failed logins. Try again later."}
    assert 0 < int(refused["Retry-After"]) <= settings.ITSM_LOGIN_BACKOFF_SECONDS
    clock.shift(int(refused["Retry-After"]))
    assert login("alice", otp=app_code(device)).status_code == 200


def test_with_the_setting_on_an_admin_without_an_app_gets_no_token(admin, agent, settings, clock):
    settings.ITSM_REQUIRE_2FA_FOR_ADMINS = True
    settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT = 2

    refusals = [login("adam") for _ in range(3)]

    # Each one names the way out, and none counts as a failure: there is no code to guess.
    assert {(r.status_code, str(r.json())) for r in refusals} == {
        (400, str({"otp": ["Admins must set up two factors first: sign in to the admin, which opens /admin/2fa/."]}))
    }
    assert login("alice").status_code == 200  # agents are not required to
    device, _ = enrol(admin)
    clock.shift(STEP)
    assert login("adam", otp=app_code(device)).status_code == 200
