"""Integration tokens: API tokens for non-human callers, each with a scope (itsm.roles.Scope), a fixed expiry and
an account of its own, issued and revoked by admins (the admin, `manage.py integration_token`)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from hmac import compare_digest
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from itsm.audit import audited_update
from itsm.exceptions import DomainError, InvalidInput
from itsm.models.integrations import IntegrationToken
from itsm.roles import Scope, scope_role
from itsm.services.users import roles_ensure, username_taken

# Every integration token starts with this, so the token lookup tells it from a person's token without a query,
# and a secret scanner can recognise one pasted where it should not be.
PREFIX = "itsm_it_"
KEY_LENGTH = 16
DEFAULT_DAYS = 90
USE_RECORDED_EVERY = timedelta(minutes=1)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ACCOUNT_PREFIX = "integration-"


class TokenRefused(DomainError):
    """The token is unknown, revoked or expired (HTTP 401)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_expiry() -> datetime:
    return timezone.now() + timedelta(days=min(DEFAULT_DAYS, settings.ITSM_INTEGRATION_TOKEN_MAX_DAYS))


def integration_token_errors(*, name: str, scope: str, expires_at: datetime) -> dict[str, list[str]]:
    """What is wrong with these values for a new token, per field (empty when nothing is): for the admin's form and
    the command as much as for `integration_token_issue`."""
    errors: dict[str, list[str]] = {}
    if not _NAME.match(name):
        errors["name"] = ["Use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit."]
    elif IntegrationToken.objects.filter(name__iexact=name).exists() or username_taken(ACCOUNT_PREFIX + name):
        errors["name"] = [f"An integration named {name!r} already exists."]
    if scope not in Scope.__members__.values():
        errors["scope"] = [f"Unknown scope {scope!r}: choose one of {', '.join(Scope)}."]
    now = timezone.now()
    longest = settings.ITSM_INTEGRATION_TOKEN_MAX_DAYS
    if expires_at <= now:
        errors["expires_at"] = ["The expiry must be in the future."]
    elif expires_at > now + timedelta(days=longest):
        errors["expires_at"] = [f"A token may live at most {longest} days (ITSM_INTEGRATION_TOKEN_MAX_DAYS)."]
    return errors


def integration_token_issue(
    *, name: str, scope: str, expires_at: datetime | None = None, created_by: Any = None
) -> tuple[IntegrationToken, str]:
    """A new token and its account; returns the row and the token, which is not stored and cannot be shown again."""
    name = (name or "").strip()
    expires_at = expires_at or default_expiry()
    errors = integration_token_errors(name=name, scope=scope, expires_at=expires_at)
    if errors:
        raise InvalidInput(errors)
    token = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        # No password (create_user stores an unusable one), no directory, no single sign-on: only this token.
        account = get_user_model()._default_manager.create_user(username=(ACCOUNT_PREFIX + name).lower())
        account.groups.add(roles_ensure()[scope_role(Scope(scope))])
        row = IntegrationToken.objects.create(
            name=name,
            account=account,
            scope=scope,
            key=token[len(PREFIX) : len(PREFIX) + KEY_LENGTH],
            digest=_digest(token),
            expires_at=expires_at,
            created_by=created_by,
        )
    return row, token


def integration_token_revoke(row: IntegrationToken, *, by: Any = None) -> bool:
    """Revoke the token at once (its next request is a 401); the row stays, as the record of what it was. Returns
    False when it was revoked already."""
    updated = audited_update(
        IntegrationToken.objects.filter(pk=row.pk, revoked_at__isnull=True), revoked_at=timezone.now(), revoked_by=by
    )
    row.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return bool(updated)


def is_integration_token(token: str) -> bool:
    return token.startswith(PREFIX)


def integration_token_check(token: str) -> IntegrationToken:
    """The live token this is, with its account, in one query; TokenRefused with the reason otherwise."""
    key = token[len(PREFIX) : len(PREFIX) + KEY_LENGTH]
    row = IntegrationToken.objects.select_related("account").filter(key=key).first()
    if row is None or not compare_digest(_digest(token), row.digest):
        raise TokenRefused("Invalid token.")
    now = timezone.now()
    if row.revoked_at is not None:
        raise TokenRefused("This integration token was revoked.")
    if row.expires_at <= now:
        raise TokenRefused("This integration token expired: an admin issues a new one.")
    if not row.account.is_active:
        raise TokenRefused("This integration's account is inactive.")
    if row.last_used_at is None or row.last_used_at <= now - USE_RECORDED_EVERY:
        IntegrationToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row
