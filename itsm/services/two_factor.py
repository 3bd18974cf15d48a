"""Second factors of staff: a TOTP authenticator app (django-otp's TOTPDevice) and ten single-use recovery codes
(its StaticDevice), set up on the admin's page /admin/2fa/ (itsm/admin/two_factor.py).

A user has a second factor once their TOTP device is confirmed, by a code the app shows. From then on every
password sign-in of theirs (the admin's and the portal's forms, the API's token endpoint) also asks for a code:
one from the app, or a recovery code, which then stops working. A sign-in through the OpenID Connect provider
leaves the second factor to the provider. Wrong codes are counted with wrong passwords (itsm.services.logins).
"""

from __future__ import annotations

import logging
import secrets
from base64 import b32encode
from binascii import unhexlify
from typing import Any

from django.conf import settings
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from itsm.roles import is_admin

logger = logging.getLogger(__name__)

RECOVERY_CODES = 10
APP_NAME = "authenticator app"
RECOVERY_NAME = "recovery codes"


class SecondFactorRefused(Exception):
    """The password was right but the second factor is missing or wrong, or an admin has none yet."""

    REQUIRED = "required"
    INVALID = "invalid"
    ENROL = "enrol"

    MESSAGES = {
        REQUIRED: "Enter the code from your authenticator app, or one of your recovery codes.",
        INVALID: "This code is wrong, expired or already used.",
        ENROL: "Admins must set up two factors first: sign in to the admin, which opens /admin/2fa/.",
    }

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(self.MESSAGES[code])


def second_factor_enrolled(user: Any) -> bool:
    """Whether the user has a confirmed authenticator app (one query)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_required(user: Any) -> bool:
    """An admin must have a second factor when ITSM_REQUIRE_2FA_FOR_ADMINS is on."""
    return bool(settings.ITSM_REQUIRE_2FA_FOR_ADMINS) and is_admin(user)


def second_factor_verify(*, user: Any, code: str) -> Device | None:
    """The device of `user` that accepts `code` (the app's current code, or a recovery code, used up), or None.
    The rows are locked, so one code cannot be used twice by two requests at once."""
    code = "".join(code.split()).replace("-", "").lower()
    if not code or len(code) > 16:
        return None
    with transaction.atomic():
        devices: list[Device] = [*TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True)]
        devices += StaticDevice.objects.select_for_update().filter(user=user, confirmed=True)
        for device in devices:
            if device.verify_token(code):
                return device
    return None


def second_factor_check(*, user: Any, code: str, enrolment_required: bool = False) -> Device | None:
    """The device that accepted `code` for a user with a second factor, or None for a user without one; raises
    SecondFactorRefused when a code was needed and not given or wrong. With `enrolment_required` (the API, where
    there is no page to set one up), an admin without one while ITSM_REQUIRE_2FA_FOR_ADMINS is on is refused."""
    if not second_factor_enrolled(user):
        if enrolment_required and second_factor_required(user):
            raise SecondFactorRefused(SecondFactorRefused.ENROL)
        return None
    if not code.strip():
        raise SecondFactorRefused(SecondFactorRefused.REQUIRED)
    device = second_factor_verify(user=user, code=code)
    if device is None:
        raise SecondFactorRefused(SecondFactorRefused.INVALID)
    return device


def totp_enrolment_start(*, user: Any) -> TOTPDevice:
    """The authenticator being set up: the user's unconfirmed one (so reloading the page keeps its QR code), or a
    new one with a fresh secret."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=APP_NAME, confirmed=False)
    return device


def totp_secret(device: TOTPDevice) -> str:
    """The secret as apps take it typed in: base32, in groups of four."""
    text = b32encode(unhexlify(device.key)).decode()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def totp_enrolment_confirm(*, user: Any, code: str) -> tuple[TOTPDevice, list[str]] | None:
    """Confirm the authenticator being set up with a code it shows, replacing any former one, and make new recovery
    codes: (the device, the codes, to show once), or None when the code is wrong."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
        if device is None or not device.verify_token("".join(code.split())):
            return None
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_regenerate(user=user)
    logger.info("second factor set up for user %s", user.pk)
    return device, codes


def recovery_codes_regenerate(*, user: Any) -> list[str]:
    """Ten new recovery codes for `user`; the former ones stop working. Shown once: only the user keeps them."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
        codes = [b32encode(secrets.token_bytes(5)).decode().lower() for _ in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return [f"{code[:4]}-{code[4:]}" for code in codes]


def recovery_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def second_factor_reset(*, user: Any, by: str) -> int:
    """Remove every device of `user` (a lost phone): their next sign-in needs only the password, and an admin is
    then sent to set up a new one. Returns how many devices were removed; `by` says who asked, for the log."""
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[1].get(TOTPDevice._meta.label, 0)
        removed += StaticDevice.objects.filter(user=user).delete()[1].get(StaticDevice._meta.label, 0)
    logger.warning("second factor of user %s reset by %s (%d devices removed)", user.pk, by, removed)
    return removed
