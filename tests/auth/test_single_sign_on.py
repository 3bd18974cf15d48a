"""Single sign-on against a real OpenID Connect provider (oidc-provider on loopback, tests/auth/oidc_provider.py):
the first sign-in creates the user with the role and teams of its `groups` claim and a later one updates them, the
sign-in pages offer the provider, local passwords can be switched off, and signing out ends the provider's
session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from itsm.models import Team
from itsm.roles import Role, role_of
from itsm.services import single_sign_on
from itsm_project.sign_in import mapping_from
from tests.auth.oidc_provider import CLIENT_ID, Browser, OidcProvider, sign_in
from tests.factories import make_user
from tests.system.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

ADA = {
    "preferred_username": "ada",
    "email": "ada@example.org",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "groups": ["itsm-agents", "network"],
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    running = OidcProvider(tmp_path_factory.mktemp("oidc"), {"ada": ADA})
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture
def sso(provider: OidcProvider, settings: Any) -> OidcProvider:
    provider.set_accounts({"ada": ADA})
    single_sign_on._discovered.clear()  # discovery as at a process's first sign-in
    settings.ITSM_OIDC_ISSUER = provider.issuer
    settings.ITSM_OIDC_PROVIDER_NAME = "Example ID"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = provider.client_secret
    settings.OIDC_RP_SCOPES = "openid email profile groups"  # the provider sends `groups` for this scope
    settings.ITSM_OIDC_AGENT_GROUP = "itsm-agents"
    settings.ITSM_OIDC_ADMIN_GROUP = "itsm-admins"
    settings.ITSM_OIDC_TEAM_GROUPS = mapping_from("ITSM_OIDC_TEAM_GROUPS", "network=network;dba=DBA")
    settings.AUTHENTICATION_BACKENDS = [
        "itsm.services.single_sign_on.SingleSignOnBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    Team.objects.create(name="Network", slug="network")
    Team.objects.create(name="DBA", slug="dba")
    return provider


def test_the_first_sign_in_creates_the_user_and_the_next_one_updates_it(sso):
    client = Client()
    done = sign_in(client, Browser(sso), "ada", next_url="/admin/")
    assert done.status_code == 302, done.content[:500]
    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    ada = get_user_model().objects.get(username="ada")
    assert (ada.email, ada.first_name, ada.last_name) == ("ada@example.org", "Ada", "Lovelace")
    assert not ada.has_usable_password()
    assert role_of(ada) == Role.AGENT
    assert [team.slug for team in ada.teams.all()] == ["network"]

    sso.set_accounts({"ada": {**ADA, "email": "ada@example.com", "groups": ["itsm-admins", "dba"]}})
    again = Client()
    assert sign_in(again, Browser(sso), "ada").status_code == 302
    ada = get_user_model().objects.get(username="ada")
    assert ada.email == "ada@example.com"
    assert role_of(ada) == Role.ADMIN
    assert ada.is_superuser
    assert [team.slug for team in ada.teams.all()] == ["dba"]
    assert get_user_model().objects.filter(username__iexact="ada").count() == 1


def test_pkce_is_sent_and_required(sso, settings):
    """The provider refuses a code flow without PKCE, so the platform must send it."""
    settings.OIDC_USE_PKCE = False
    client = Client()
    start = client.get("/oidc/authenticate/?next=/portal/")
    assert "code_challenge" not in parse_qs(urlsplit(start["Location"]).query)
    back = Browser(sso).visit(start["Location"], "ada")
    assert "error=invalid_request" in back
    assert not get_user_model().objects.filter(username="ada").exists()
    settings.OIDC_USE_PKCE = True
    start = client.get("/oidc/authenticate/?next=/portal/")
    assert parse_qs(urlsplit(start["Location"]).query)["code_challenge_method"] == ["S256"]


def test_the_sign_in_pages_offer_the_provider_and_local_login_can_be_off(sso, settings):
    make_user("local", role="admin", password="local-password-1")
    for page in ("/admin/login/", "/portal/sign-in/"):
        html = Client().get(page).content.decode()
        assert "Sign in with Example ID" in html
        assert 'name="password"' in html

    settings.ITSM_LOCAL_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = ["itsm.services.single_sign_on.SingleSignOnBackend"]
    for page in ("/admin/login/", "/portal/sign-in/"):
        html = Client().get(page).content.decode()
        assert "Sign in with Example ID" in html
        assert 'name="password"' not in html
    form = {"username": "local", "password": "local-password-1"}
    assert Client().post("/admin/login/?next=/admin/", {**form, "next": "/admin/"}).status_code == 200
    assert Client().post("/portal/sign-in/", form).status_code == 200
    assert APIClient().post("/api/v1/auth/token/", form, format="json").status_code == 400


def test_without_a_provider_there_is_no_button_and_no_single_sign_on(settings, db):
    settings.ITSM_OIDC_ISSUER = ""
    assert "Sign in with" not in Client().get("/portal/sign-in/").content.decode()
    assert Client().get("/oidc/authenticate/").status_code == 404


def test_signing_out_ends_the_provider_session(sso, tmp_path: Path):
    client, browser = Client(), Browser(sso)
    sign_in(client, browser, "ada")
    assert "/oidc/logout/" in client.get("/portal/").content.decode()  # the portal's sign-out button
    out = client.post("/oidc/logout/")
    assert out.status_code == 302
    assert out["Location"].startswith(f"{sso.issuer}/session/end")
    assert parse_qs(urlsplit(out["Location"]).query)["id_token_hint"]
    assert client.get("/portal/").status_code == 302  # signed out of the platform
    ended = sso.lines("session ended")
    browser.end_session(out["Location"])
    assert sso.lines("session ended") == ended + 1
    signed_in = sso.lines("signed in ada")
    sign_in(client, browser, "ada")  # the provider asks who the user is again
    assert sso.lines("signed in ada") == signed_in + 1

    # The admin's "Log out" too.
    out = client.post("/admin/logout/")
    assert out.status_code == 302
    assert out["Location"].startswith(f"{sso.issuer}/session/end")


def test_a_provider_that_does_not_answer_is_a_503_and_passwords_still_sign_in(settings, db):
    settings.ITSM_OIDC_ISSUER = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.AUTHENTICATION_BACKENDS = [
        "itsm.services.single_sign_on.SingleSignOnBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    single_sign_on._discovered.clear()
    assert Client().get("/oidc/authenticate/").status_code == 503
    make_user("local", role="agent", password="local-password-1")
    form = {"username": "local", "password": "local-password-1"}
    assert APIClient().post("/api/v1/auth/token/", form, format="json").status_code == 200
