"""Directory sign-in against a real slapd: a directory user signs in to the admin and gets an API token, its groups
set its role and teams on every sign-in, a wrong password is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from itsm.models import Team
from itsm.roles import Role, role_of
from itsm_project.sign_in import ldap_settings, mapping_from
from tests.auth.directory_server import GROUPS, PEOPLE, certificates, directory, group, person
from tests.factories import make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

PASSWORD = "ada-directory-password"
LDIF = (
    person("ada", PASSWORD, "Ada", "Lovelace")
    + person("service", "bind-secret", "Service", "Account")
    + group("itsm-agents", "ada")
    + group("itsm-admins", "service")
    + group("network", "ada", "service")  # groupOfNames needs one member: ada leaves it below
)


@pytest.fixture
def ldap_directory(tmp_path: Path, settings: Any) -> Any:
    with directory(tmp_path / "slapd", LDIF) as server:
        for name, value in ldap_settings(
            server_uri=server.uri,
            bind_dn=f"uid=service,{PEOPLE}",
            bind_password="bind-secret",
            user_search_base=PEOPLE,
            user_search_filter="(uid=%(user)s)",
            group_search_base=GROUPS,
            group_type="groupOfNames",
            start_tls=False,
            ca_file="",
            timeout=5,
        ).items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = [
            "itsm.services.directory.DirectoryBackend",
            "django.contrib.auth.backends.ModelBackend",
        ]
        settings.ITSM_LDAP_AGENT_GROUP = f"cn=itsm-agents,{GROUPS}"
        settings.ITSM_LDAP_ADMIN_GROUP = f"CN=itsm-admins,{GROUPS}"  # DNs compare case-insensitively
        settings.ITSM_LDAP_TEAM_GROUPS = mapping_from(
            "ITSM_LDAP_TEAM_GROUPS", f"network=cn=network,{GROUPS}; dba=cn=dba,{GROUPS}"
        )
        yield server


def admin_sign_in(username: str, password: str) -> tuple[Client, Any]:
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"}
    )
    return client, response


def test_a_directory_agent_signs_in_to_the_admin_and_gets_a_token(ldap_directory):
    network, dba = Team.objects.create(name="Network", slug="network"), Team.objects.create(name="DBA", slug="dba")
    client, response = admin_sign_in("ada", PASSWORD)
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

    ada = get_user_model().objects.get(username="ada")
    assert (ada.email, ada.first_name, ada.last_name) == ("ada@example.org", "Ada", "Lovelace")
    assert not ada.has_usable_password()  # the directory keeps the password
    assert role_of(ada) == Role.AGENT
    assert ada.is_staff
    assert not ada.is_superuser
    assert set(ada.teams.all()) == {network}
    ada.teams.add(dba)  # a mapped team the directory does not list: taken away on the next sign-in

    api = APIClient()
    token = api.post("/api/v1/auth/token/", {"username": "ada", "password": PASSWORD}, format="json")
    assert token.status_code == 200, token.content
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert api.get("/api/v1/tickets/").status_code == 200
    assert set(get_user_model().objects.get(username="ada").teams.all()) == {network}


def test_a_user_moved_to_the_admins_group_is_an_admin_on_the_next_sign_in(ldap_directory):
    admin_sign_in("ada", PASSWORD)
    ldap_directory.modify(
        f"dn: cn=itsm-admins,{GROUPS}\nchangetype: modify\nadd: member\nmember: uid=ada,{PEOPLE}\n\n"
        f"dn: cn=network,{GROUPS}\nchangetype: modify\ndelete: member\nmember: uid=ada,{PEOPLE}\n"
    )
    client, response = admin_sign_in("ada", PASSWORD)
    assert response.status_code == 302
    ada = get_user_model().objects.get(username="ada")
    assert role_of(ada) == Role.ADMIN
    assert ada.is_superuser
    assert not ada.teams.exists()
    assert client.get("/admin/auth/user/").status_code == 200  # only admins manage users


def test_a_wrong_password_is_refused_everywhere(ldap_directory):
    _, response = admin_sign_in("ada", "not-the-password")
    assert response.status_code == 200
    assert b"correct username and password" in response.content
    token = APIClient().post("/api/v1/auth/token/", {"username": "ada", "password": "wrong"}, format="json")
    assert token.status_code == 400
    assert not get_user_model().objects.filter(username="ada").exists()


def test_local_accounts_still_sign_in_beside_the_directory(ldap_directory):
    make_user("local-agent", role="agent", password="local-password-1")
    token = APIClient().post(
        "/api/v1/auth/token/", {"username": "local-agent", "password": "local-password-1"}, format="json"
    )
    assert token.status_code == 200, token.content


@pytest.mark.parametrize("trusted", [True, False])
def test_start_tls_signs_in_only_with_the_directory_s_ca(tmp_path, settings, caplog, trusted):
    ca, tls = certificates(tmp_path / "tls")
    with directory(tmp_path / "slapd", LDIF, tls=tls) as server:
        for name, value in ldap_settings(
            server_uri=server.uri,
            bind_dn=f"uid=service,{PEOPLE}",
            bind_password="bind-secret",
            user_search_base=PEOPLE,
            user_search_filter="(uid=%(user)s)",
            group_search_base=GROUPS,
            group_type="groupOfNames",
            start_tls=True,
            ca_file=str(ca if trusted else certificates(tmp_path / "other")[0]),
            timeout=5,
        ).items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = ["itsm.services.directory.DirectoryBackend"]
        settings.ITSM_LDAP_AGENT_GROUP = f"cn=itsm-agents,{GROUPS}"
        _, response = admin_sign_in("ada", PASSWORD)
        assert response.status_code == (302 if trusted else 200)
        refusals = [record.getMessage() for record in caplog.records if "LDAPError" in record.getMessage()]
        assert (not refusals) if trusted else ("CONNECT_ERROR" in " ".join(refusals)), refusals  # the TLS handshake
