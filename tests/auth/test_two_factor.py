"""Two factors for staff: setting up an authenticator app at /admin/2fa/, signing in with its codes or a recovery
code, admins held at that page while ITSM_REQUIRE_2FA_FOR_ADMINS is on, and taking a lost second factor back."""

from __future__ import annotations

import re
from base64 import b32encode
from binascii import unhexlify
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from itsm.models import LoginThrottle
from tests.auth.two_factor import START, STEP, admin_sign_in, app_code, enrol
from tests.conftest import page_text
from tests.test_commands import manage

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_agent_sets_up_an_app_with_a_qr_code_and_a_code_and_sees_ten_recovery_codes_once(agent, clock):
    browser = signed_in(agent)

    page = browser.get("/admin/2fa/")
    assert page.status_code == 200
    html = page_text(page)
    device = TOTPDevice.objects.get(user=agent)
    assert not device.confirmed
    svg = re.search(r"<svg [^>]*class=\"qr-code\".*?</svg>", html, re.S)
    assert svg is not None, html
    assert "style=" not in svg[0]
    assert re.search(r"<script(?![^>]*\bsrc=\"/static/)", html) is None  # no inline script, none from elsewhere
    assert "script-src 'self'" in page["Content-Security-Policy"]
    secret = b32encode(unhexlify(device.key)).decode()
    assert re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)[1].replace(" ", "") == secret  # type: ignore[index]
    assert browser.get("/admin/2fa/").content.count(secret[:4].encode()) >= 1  # a reload keeps the same secret
    assert TOTPDevice.objects.filter(user=agent).count() == 1

    wrong = browser.post(
        "/admin/2fa/", {"action": "confirm", "code": "000000" if app_code(device) != "000000" else "1"}
    )
    assert "This code is wrong or expired" in page_text(wrong)
    assert not TOTPDevice.objects.get(user=agent).confirmed

    done = browser.post("/admin/2fa/", {"action": "confirm", "code": app_code(device)})
    codes = re.findall(r"<li>([a-z2-7]{4}-[a-z2-7]{4})</li>", page_text(done))
    assert len(set(codes)) == 10
    assert "they are shown only now" in page_text(done)
    assert TOTPDevice.objects.get(user=agent).confirmed
    assert browser.session[DEVICE_ID_SESSION_KEY] == device.persistent_id  # this session counts as verified

    later = page_text(browser.get("/admin/2fa/"))
    assert 'id="codes-left">10<' in later
    assert not any(code in later for code in codes)


def test_with_the_setting_on_an_admin_without_an_app_reaches_only_the_page_that_sets_one_up(
    admin, agent, settings, clock
):
    settings.ITSM_REQUIRE_2FA_FOR_ADMINS = True
    operator = signed_in(admin)

    for path in ["/admin/", "/admin/itsm/ticket/", "/admin/auth/user/", "/admin/password_change/", "/admin/itsm/"]:
        response = operator.get(path)
        assert (response.status_code, response.get("Location")) == (302, "/admin/2fa/"), path
    assert operator.get("/admin/2fa/").status_code == 200
    # An agent is not held there, and an admin neither while the setting is off.
    assert signed_in(agent).get("/admin/").status_code == 200
    settings.ITSM_REQUIRE_2FA_FOR_ADMINS = False
    assert operator.get("/admin/").status_code == 200

    settings.ITSM_REQUIRE_2FA_FOR_ADMINS = True
    device = TOTPDevice.objects.get(user=admin)
    operator.post("/admin/2fa/", {"action": "confirm", "code": app_code(device)})
    assert operator.get("/admin/").status_code == 200
    assert operator.get("/admin/auth/user/").status_code == 200


def test_a_user_with_an_app_signs_in_to_the_admin_only_with_its_current_code(agent, clock):
    device, _ = enrol(agent)
    clock.shift(STEP)
    client = Client()

    missing = admin_sign_in(client, "alice")
    assert missing.status_code == 200
    assert "Enter the code from your authenticator app" in page_text(missing)
    wrong = admin_sign_in(client, "alice", otp=f"{(int(app_code(device)) + 1) % 1_000_000:06d}")
    assert "This code is wrong, expired or already used." in page_text(wrong)
    assert client.get("/admin/").status_code == 302

    signed = admin_sign_in(client, "alice", otp=app_code(device))
    assert (signed.status_code, signed["Location"]) == (302, "/admin/")
    assert client.get("/admin/").status_code == 200
    # The same code does not sign in twice (another browser, the same 30 seconds).
    assert "already used" in page_text(admin_sign_in(Client(), "alice", otp=app_code(device)))


def test_a_session_signed_in_without_the_code_is_sent_to_sign_in_again(agent, clock):
    enrol(agent)
    browser = signed_in(agent)  # e.g. signed in before the app was set up, in another browser

    response = browser.get("/admin/itsm/ticket/")

    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/admin/itsm/ticket/")
    assert 'name="otp"' in page_text(browser.get(response["Location"]))


def test_the_portal_asks_a_user_with_an_app_for_the_code_too(agent, requester, clock):
    device, _ = enrol(agent)
    clock.shift(STEP)
    client = Client()

    refused = client.post("/portal/sign-in/", {"username": "alice", "password": "correct-horse-battery"})
    assert "Enter the code from your authenticator app" in page_text(refused)
    signed = client.post(
        "/portal/sign-in/", {"username": "alice", "password": "correct-horse-battery", "otp": app_code(device)}
    )
    assert signed.status_code == 302
    # A requester, who has none, signs in as before.
    assert (
        Client().post("/portal/sign-in/", {"username": "rita", "password": "correct-horse-battery"}).status_code == 302
    )


def test_a_recovery_code_signs_in_once(agent, clock):
    _, codes = enrol(agent)

    first = admin_sign_in(Client(), "alice", otp=codes[3].upper())
    again = admin_sign_in(Client(), "alice", otp=codes[3])

    assert first.status_code == 302
    assert again.status_code == 200
    assert "already used" in page_text(again)
    assert StaticToken.objects.filter(device__user=agent).count() == 9
    assert admin_sign_in(Client(), "alice", otp=codes[4].replace("-", "")).status_code == 302


def test_wrong_codes_count_as_failed_sign_ins_and_are_throttled_like_passwords(agent, settings, clock):
    settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT = 3
    device, _ = enrol(agent)
    clock.shift(STEP)
    client = Client()
    right = app_code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    for _ in range(2):
        assert admin_sign_in(client, "alice", otp=wrong).status_code == 200
    # A right password without a code gives nothing back either: it would clear the count between guesses.
    assert admin_sign_in(client, "alice").status_code == 200
    refused = admin_sign_in(client, "alice", otp=right)

    assert refused.status_code == 429
    assert "Too many failed sign-ins" in page_text(refused)
    assert LoginThrottle.objects.filter(scope=LoginThrottle.Scope.ACCOUNT_ADDRESS, failures=3).exists()


def test_a_user_who_lost_the_phone_signs_in_with_a_recovery_code_and_sets_up_a_new_app(agent, clock):
    old, codes = enrol(agent)
    browser = Client()
    assert admin_sign_in(browser, "alice", otp=codes[0]).status_code == 302

    replaced = browser.post("/admin/2fa/", {"action": "replace"})
    assert (replaced.status_code, replaced["Location"]) == (302, "/admin/2fa/")
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()
    assert not StaticToken.objects.filter(device__user=agent).exists()
    page = browser.get("/admin/2fa/")
    assert "qr-code" in page_text(page)
    new = TOTPDevice.objects.get(user=agent)
    assert new.key != old.key
    assert (
        len(
            re.findall(
                r"<li>[a-z2-7]{4}-[a-z2-7]{4}</li>",
                page_text(browser.post("/admin/2fa/", {"action": "confirm", "code": app_code(new)})),
            )
        )
        == 10
    )


def test_new_recovery_codes_replace_the_old_ones(agent, clock):
    _, old_codes = enrol(agent)
    browser = Client()
    assert admin_sign_in(browser, "alice", otp=old_codes[0]).status_code == 302

    page = page_text(browser.post("/admin/2fa/", {"action": "recovery"}))

    new_codes = re.findall(r"<li>([a-z2-7]{4}-[a-z2-7]{4})</li>", page)
    assert len(new_codes) == 10
    assert admin_sign_in(Client(), "alice", otp=old_codes[1]).status_code == 200
    assert admin_sign_in(Client(), "alice", otp=new_codes[1]).status_code == 302


def test_an_admin_resets_another_users_second_factor_from_the_user_list(
    admin, agent, clock, django_assert_max_num_queries
):
    enrol(agent)
    operator = signed_in(admin)
    with django_assert_max_num_queries(12):
        listing = page_text(operator.get("/admin/auth/user/"))
    assert "Reset the second factor of the selected users" in listing
    assert 'alt="True"' in listing  # the two-factor column: alice has one

    done = operator.post(
        "/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [agent.pk]}, follow=True
    )

    assert "The second factor of 1 users was reset." in page_text(done)
    assert not TOTPDevice.objects.filter(user=agent).exists()
    assert admin_sign_in(Client(), "alice").status_code == 302  # the password alone, then a new app


def test_reset_2fa_removes_the_app_and_the_recovery_codes(agent, clock):
    enrol(agent)
    out = __import__("io").StringIO()

    call_command("reset_2fa", "ALICE", stdout=out)

    assert "Reset the second factor of alice" in out.getvalue()
    assert not TOTPDevice.objects.filter(user=agent).exists()
    assert not StaticToken.objects.filter(device__user=agent).exists()
    with pytest.raises(CommandError, match="There is no user named 'nobody'"):
        call_command("reset_2fa", "nobody")


def test_reset_2fa_for_an_unknown_user_exits_non_zero_with_a_message(db):
    result = manage("reset_2fa", "nobody")

    assert result.returncode == 1
    assert "There is no user named 'nobody': nothing was reset." in result.stderr
