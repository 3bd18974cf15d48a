"""What every sign-in face shares: the authentication backend (user names matched once normalised, in any case),
the sign-in forms of the admin and the portal (their password checked by itsm.services.logins, under the same
limits as the API's token endpoint), and taking a user's API tokens back when their password changes or they are
deactivated.

That last rule is held at the save, by signal receivers, because most of the ways to change a password are Django's
own (the admin's password form, the password reset, `manage.py changepassword`) and call no service of ours.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework.throttling import BaseThrottle

from itsm.services.logins import LoginThrottled, credentials_check
from itsm.services.tokens import tokens_revoke_all
from itsm.services.two_factor import SecondFactorRefused
from itsm.services.users import user_by_username

THROTTLED = _("Too many failed sign-ins. Try again in a few minutes.")


def client_address(request: HttpRequest) -> str:
    """The address the throttle counts: REMOTE_ADDR, or the entry ITSM_NUM_PROXIES from the right of
    X-Forwarded-For (DRF's reading, which the API's throttles use too)."""
    return str(BaseThrottle().get_ident(request))  # type: ignore[arg-type]  # it reads META only


class UsernameBackend(ModelBackend):
    """Django's model backend, with the user found by name once normalised, in any case: `Agent` signs in as
    `agent`. An unknown name still costs one password hash, so timing does not tell which names exist."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = user_by_username(username)
        if user is None:
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class ThrottledSignInMixin:
    """AuthenticationForm.clean with the password checked by credentials_check: past a limit the form says so,
    without checking the password, and `throttled` holds the wait for the view's Retry-After. The `otp` field takes
    the code of a user with a second factor (itsm.services.two_factor); a wrong one counts as a failed sign-in."""

    throttled: LoginThrottled | None = None
    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    user_cache: Any
    fields: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["otp"] = forms.CharField(
            label=_("Code"),
            required=False,
            max_length=64,
            strip=True,
            help_text=_("Only if you set up two factors: from your authenticator app, or a recovery code."),
            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
        )

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            address = client_address(self.request) if self.request is not None else ""
            try:
                self.user_cache = credentials_check(
                    username=username, password=password, address=address, otp=self.cleaned_data.get("otp") or ""
                )
            except LoginThrottled as exc:
                self.throttled = exc
                raise ValidationError(THROTTLED, code="throttled") from None
            except SecondFactorRefused as refused:
                raise ValidationError({"otp": str(refused)}, code=refused.code) from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()  # type: ignore[attr-defined]
            self.confirm_login_allowed(self.user_cache)  # type: ignore[attr-defined]
        return self.cleaned_data


class PortalSignInForm(ThrottledSignInMixin, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignInMixin, AdminAuthenticationForm):
    pass


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def _note_credentials_change(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """Whether this save changes the password (to another, or to none) or deactivates the user. The one save that
    changes the stored hash and not the password is Django's rehash on sign-in (check_password's setter, with
    update_fields=["password"] and no raw password): that one keeps the tokens."""
    instance._itsm_revoke_tokens = False
    if instance.pk is None or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return
    before = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    rehash = update_fields is not None and set(update_fields) == {"password"} and instance._password is None
    password_changed = before["password"] != instance.password and not rehash
    instance._itsm_revoke_tokens = password_changed or (before["is_active"] and not instance.is_active)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _revoke_tokens(sender: Any, instance: Any, **kwargs: Any) -> None:
    if getattr(instance, "_itsm_revoke_tokens", False):
        instance._itsm_revoke_tokens = False
        tokens_revoke_all(user=instance)
