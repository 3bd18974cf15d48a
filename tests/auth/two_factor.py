"""What the two-factor tests share: a user's authenticator app, played by django-otp's own TOTP with the device's
key, at a clock the test holds still (time_machine), so every code is known in advance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from itsm.services.two_factor import totp_enrolment_confirm, totp_enrolment_start

PASSWORD = "correct-horse-battery"  # tests.factories.make_user's
START = datetime(2026, 12, 1, 9, 0, 5, tzinfo=UTC)
STEP = timedelta(seconds=30)  # a new code every 30 seconds


def app_code(device: TOTPDevice) -> str:
    """The code the user's app shows now."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    return f"{totp.token():0{device.digits}d}"


def enrol(user: Any) -> tuple[TOTPDevice, list[str]]:
    """Set up an app for `user` as the page does (with the code of the current step: sign in at a later step)."""
    device = totp_enrolment_start(user=user)
    confirmed = totp_enrolment_confirm(user=user, code=app_code(device))
    assert confirmed is not None
    return confirmed


def admin_sign_in(client: Client, username: str, otp: str = "", password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "otp": otp, "next": "/admin/"},
        **extra,
    )
