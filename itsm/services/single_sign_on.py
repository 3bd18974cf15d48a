"""Single sign-on with OpenID Connect through mozilla-django-oidc: the authorization code flow with PKCE, the
provider's endpoints discovered from ITSM_OIDC_ISSUER (`/.well-known/openid-configuration`, fetched at the first
sign-in and kept for the life of the process), users created at their first sign-in and updated at every one: name,
e-mail, the role and the teams from the ITSM_OIDC_GROUPS_CLAIM claim (ITSM_OIDC_ADMIN_GROUP, ITSM_OIDC_AGENT_GROUP,
ITSM_OIDC_TEAM_GROUPS). Installed as an authentication backend only when ITSM_OIDC_ISSUER is set."""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.shortcuts import resolve_url
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from itsm.roles import Role
from itsm.services.users import role_set, teams_set

logger = logging.getLogger(__name__)

# mozilla-django-oidc's endpoint settings, and the discovery document's names for them.
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovered: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()
ID_TOKEN = "oidc_id_token"  # noqa: S105  (a session key, no secret) where mozilla-django-oidc keeps the ID token in the session (OIDC_STORE_ID_TOKEN)


class DiscoveryFailed(Exception):
    """The issuer's discovery document could not be read, or is not the issuer's."""


def discovery(issuer: str | None = None) -> dict[str, Any]:
    """The issuer's OpenID configuration, fetched once per process (again after a failure)."""
    issuer = (issuer or settings.ITSM_OIDC_ISSUER).rstrip("/")
    with _lock:
        if issuer not in _discovered:
            url = f"{issuer}/.well-known/openid-configuration"
            try:
                response = requests.get(url, timeout=settings.ITSM_OIDC_TIMEOUT_SECONDS)
                response.raise_for_status()
                document = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise DiscoveryFailed(f"{url}: {exc}") from exc
            if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer:
                raise DiscoveryFailed(f"{url} does not describe the issuer {issuer}")
            missing = sorted(name for name in DISCOVERED.values() if not document.get(name))
            if missing:
                raise DiscoveryFailed(f"{url} names no {', '.join(missing)}")
            _discovered[issuer] = document
        return _discovered[issuer]


def oidc_setting(attr: str, *default: Any) -> Any:
    """mozilla-django-oidc's settings, with the provider's endpoints from discovery."""
    if attr in DISCOVERED:
        return discovery()[DISCOVERED[attr]]
    return import_from_settings(attr, *default)


def provider_logout_url(id_token: str | None, after: str) -> str | None:
    """Where to send the browser to end the provider's session too (RP-initiated logout), or None when the provider
    has no end_session_endpoint."""
    try:
        endpoint = discovery().get("end_session_endpoint")
    except DiscoveryFailed as exc:
        logger.warning("single sign-on: cannot end the provider's session: %s", exc)
        return None
    if not endpoint:
        return None
    query = {"client_id": settings.OIDC_RP_CLIENT_ID, "post_logout_redirect_uri": after}
    if id_token:
        query["id_token_hint"] = id_token
    return f"{endpoint}?{urlencode(query)}"


def _groups(claims: dict[str, Any]) -> set[str]:
    value = claims.get(settings.ITSM_OIDC_GROUPS_CLAIM) or []
    return {str(item).lower() for item in ([value] if isinstance(value, str) else value)}


def role_from_claims(claims: dict[str, Any]) -> Role:
    groups = _groups(claims)
    if settings.ITSM_OIDC_ADMIN_GROUP and settings.ITSM_OIDC_ADMIN_GROUP.lower() in groups:
        return Role.ADMIN
    if settings.ITSM_OIDC_AGENT_GROUP and settings.ITSM_OIDC_AGENT_GROUP.lower() in groups:
        return Role.AGENT
    return Role.REQUESTER


def claims_user_sync(user: Any, claims: dict[str, Any]) -> Any:
    """Name, e-mail, role and teams from the provider's claims, as of this sign-in."""
    user.email = str(claims.get("email") or user.email)
    user.first_name = str(claims.get("given_name") or user.first_name)[:150]
    user.last_name = str(claims.get("family_name") or user.last_name)[:150]
    role_set(user, role_from_claims(claims))  # saves
    team_of: dict[str, str] = settings.ITSM_OIDC_TEAM_GROUPS
    groups = _groups(claims)
    teams_set(user, member_of={team_of[g] for g in groups if g in team_of}, managed=set(team_of.values()))
    return user


class SingleSignOnBackend(OIDCAuthenticationBackend):
    """Users are matched by the ITSM_OIDC_USERNAME_CLAIM claim (preferred_username by default), not by e-mail."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the parent's: its endpoints come from discovery when a sign-in needs them, so a password sign-in
        # (every backend is built for each authenticate()) never waits for the provider.
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if request is None or "code" not in request.GET or "state" not in request.GET:
            return None
        self.OIDC_OP_TOKEN_ENDPOINT = oidc_setting("OIDC_OP_TOKEN_ENDPOINT")
        self.OIDC_OP_USER_ENDPOINT = oidc_setting("OIDC_OP_USER_ENDPOINT")
        self.OIDC_OP_JWKS_ENDPOINT = oidc_setting("OIDC_OP_JWKS_ENDPOINT")
        return super().authenticate(request, **kwargs)

    def _username(self, claims: dict[str, Any]) -> str:
        return str(claims.get(settings.ITSM_OIDC_USERNAME_CLAIM) or "")[:150]

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        return f"{settings.ITSM_OIDC_USERNAME_CLAIM} {self._username(claims)}"

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(self._username(claims))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(username__iexact=self._username(claims))

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = self.UserModel(username=self._username(claims))
        user.set_unusable_password()
        return claims_user_sync(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        return claims_user_sync(user, claims)


def logout_url(request: HttpRequest) -> str:
    """OIDC_OP_LOGOUT_URL_METHOD: read before the session is flushed."""
    after = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    return provider_logout_url(request.session.get(ID_TOKEN), after) or after


def sign_in_context(request: HttpRequest) -> dict[str, Any]:
    """The context processor of the sign-in pages and the sign-out buttons."""
    session = getattr(request, "session", None)
    return {
        "sign_in": {
            "provider": settings.ITSM_OIDC_PROVIDER_NAME if settings.ITSM_OIDC_ISSUER else "",
            "password_form": settings.ITSM_LOCAL_LOGIN or bool(settings.ITSM_LDAP_SERVER_URI),
            "provider_session": bool(settings.ITSM_OIDC_ISSUER and session is not None and session.get(ID_TOKEN)),
        }
    }
