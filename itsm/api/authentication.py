"""Token authentication in one query: knox's hashed, expiring tokens, with the user and their role read together.

knox's own class costs three queries on every request: the token with its user, every other token of that user
(to delete expired ones) and then, here, the user's groups for the role. This one reads the token, the user and
whether the user is in the agent or admin group in a single SELECT. Expired tokens of other sessions are left to
the daily cleanup job instead of being swept on every request. The digest check, the expiry and the
auto-refresh (at most one write per MIN_REFRESH_INTERVAL) are knox's.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from itsm.roles import Role

# The user's highest role group: "admin" sorts before "agent", so the first name is the highest.
STAFF_GROUP = (
    Group.objects.filter(user=OuterRef("user_id"), name__in=[Role.ADMIN, Role.AGENT])
    .order_by("name")
    .values("name")[:1]
)


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        message = _("Invalid token.")
        text = token.decode("utf-8")
        candidates = (
            get_token_model()
            .objects.filter(token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user")
            .annotate(staff_group=Subquery(STAFF_GROUP))
        )
        for auth_token in candidates:
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
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
                # The same rule as itsm.roles.role_of, which reads the remembered value instead of the groups.
                user._itsm_role = Role.ADMIN if user.is_superuser else Role(auth_token.staff_group or Role.REQUESTER)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme (Authorization: Token <token>), as drf-spectacular documents knox's own class."""

    target_class = "itsm.api.authentication.TokenAuthentication"
