"""Token authentication in one query: knox's hashed, expiring tokens, with the user and their role read together.

knox's own class costs three queries on every request: the token with its user, every other token of that user
(to delete expired ones) and then, here, the user's groups for the role. This one reads the token, the user and
whether the user is in the agent or admin group in a single SELECT. Expired tokens of other sessions are left to
the daily cleanup job instead of being swept on every request. The digest check, the expiry and the
auto-refresh (at most one write per MIN_REFRESH_INTERVAL, never past AUTO_REFRESH_MAX_TTL) are knox's.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.request import Request

from itsm.models.integrations import IntegrationToken
from itsm.roles import STAFF_ROLES, Scope, remember_role, role_from, scope_allows, scope_role
from itsm.services.integrations import TokenRefused, integration_token_check, is_integration_token

API_PREFIX = "/api/v1/"


@dataclass(frozen=True)
class _Columns:
    """A model's concrete columns as the lookup reads them, with the database's converters (SQLite stores times as
    text and booleans as integers; the ORM applies the same functions to what it reads)."""

    model: type[Model]
    attnames: list[str]
    converters: list[tuple[Any, list[Callable[..., Any]]]]

    @classmethod
    def of(cls, model: type[Model]) -> _Columns:
        columns = [field.get_col(model._meta.db_table) for field in model._meta.concrete_fields]
        return cls(
            model,
            [field.attname for field in model._meta.concrete_fields],
            [(col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)) for col in columns],
        )

    def build(self, values: tuple[Any, ...]) -> Any:
        converted = []
        for value, (col, functions) in zip(values, self.converters, strict=True):
            for function in functions:
                value = function(value, col, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.attnames, converted)


@cache
def _lookup() -> tuple[str, _Columns, _Columns]:
    """The token, its user and the user's highest staff group ("admin" sorts before "agent") in one SELECT, written
    once from the models' tables and columns. Django would compile the same query again on every request, which
    cost 2 of the 3 ms this lookup took (docs/benchmarks.md, token authentication)."""
    quote = connection.ops.quote_name
    token_meta, user_meta = get_token_model()._meta, get_user_model()._meta
    memberships = quote(user_meta.get_field("groups").m2m_db_table())
    columns = ", ".join(
        [f"t.{quote(str(field.column))}" for field in token_meta.concrete_fields]
        + [f"u.{quote(str(field.column))}" for field in user_meta.concrete_fields]
    )
    staff = ", ".join(f"'{role}'" for role in STAFF_ROLES)
    highest_staff_group = (
        f"SELECT g.name FROM {quote(Group._meta.db_table)} g JOIN {memberships} m ON m.group_id = g.id"  # noqa: S608
        f" WHERE m.user_id = t.user_id AND g.name IN ({staff}) ORDER BY g.name LIMIT 1"
    )
    tokens, users = quote(token_meta.db_table), quote(user_meta.db_table)
    # Names from the models; the token key is a bound parameter.
    sql = f"SELECT {columns}, ({highest_staff_group}) FROM {tokens} t JOIN {users} u ON u.id = t.user_id"  # noqa: S608
    return f"{sql} WHERE t.token_key = %s", _Columns.of(get_token_model()), _Columns.of(get_user_model())


def _candidates(token_key: str) -> list[tuple[Any, str | None]]:
    """The tokens with this key (knox allows several), each with its user and the user's staff group, if any."""
    sql, token_columns, user_columns = _lookup()
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_key])
        rows = cursor.fetchall()
    found = []
    split = len(token_columns.attnames)
    for row in rows:
        auth_token = token_columns.build(row[:split])
        auth_token.user = user_columns.build(row[split:-1])
        found.append((auth_token, row[-1]))
    return found


def _expired(auth_token: Any) -> bool:
    """Past its sliding expiry, or older than the absolute lifetime (AUTO_REFRESH_MAX_TTL, ITSM_TOKEN_MAX_AGE_HOURS),
    however often it was used: knox caps the refresh at that age, and this ends a token whose expiry was written
    before the cap was set."""
    now = timezone.now()
    max_age = knox_settings.AUTO_REFRESH_MAX_TTL
    too_old = max_age is not None and auth_token.created + max_age <= now
    return too_old or (auth_token.expiry is not None and auth_token.expiry < now)


def _scope_check(request: Request, integration: IntegrationToken) -> None:
    """An integration token reaches only the collections its scope names (itsm.roles.scope_allows)."""
    path = request.path_info
    collection = path[len(API_PREFIX) :].split("/", 1)[0] if path.startswith(API_PREFIX) else None
    method = request.method or "GET"
    if collection is None or not scope_allows(Scope(integration.scope), method=method, collection=collection):
        where = f"/api/v1/{collection}/" if collection is not None else path
        raise exceptions.PermissionDenied(
            f"This integration token's scope ({integration.scope}) does not allow {method} on {where}."
        )


class TokenAuthentication(KnoxTokenAuthentication):
    """A person's knox token, or an integration token (itsm.services.integrations) held to its scope."""

    def authenticate(self, request: Any) -> Any:
        found = super().authenticate(request)
        if found is not None and isinstance(found[1], IntegrationToken):
            _scope_check(request, found[1])
        return found

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        message = _("Invalid token.")
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(message) from None
        if not (text.isascii() and text.isprintable()):  # a NUL could not even be sent to PostgreSQL
            raise exceptions.AuthenticationFailed(message)
        if is_integration_token(text):
            try:
                integration = integration_token_check(text)
            except TokenRefused as exc:
                raise exceptions.AuthenticationFailed(str(exc)) from None
            remember_role(integration.account, scope_role(Scope(integration.scope)))
            return integration.account, integration
        for auth_token, staff_group in _candidates(text[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if _expired(auth_token):
                username = auth_token.user.get_username()
                auth_token.delete()
                token_expired.send(sender=self.__class__, username=username, source="auth_token")
                continue
            try:
                digest = hash_token(text)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(message) from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                user = auth_token.user
                # The highest staff group is all the rule needs; role_of then reads the remembered role.
                remember_role(user, role_from(is_superuser=user.is_superuser, group_names=[staff_group or ""]))
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme (Authorization: Token <token>), as drf-spectacular documents knox's own class."""

    target_class = "itsm.api.authentication.TokenAuthentication"
