"""The sign-in settings refuse what cannot work, at start, with the variable to fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from itsm_project.sign_in import ldap_settings, mapping_from
from tests.system.processes import ROOT

LDAP = {
    "server_uri": "ldap://127.0.0.1:1",
    "bind_dn": "",
    "bind_password": "",
    "user_search_base": "ou=people,dc=example,dc=org",
    "user_search_filter": "(uid=%(user)s)",
    "group_search_base": "",
    "group_type": "groupOfNames",
    "start_tls": False,
    "ca_file": "",
    "timeout": 5,
}


def test_team_mappings_are_slug_equals_value_pairs():
    assert mapping_from("X", " network=cn=Network,ou=groups ; dba=DBA;") == {
        "cn=network,ou=groups": "network",
        "dba": "dba",
    }
    assert mapping_from("X", "") == {}
    for bad in ("network", "=cn=x", "network="):
        with pytest.raises(ImproperlyConfigured, match=r"X: .* is not team-slug=value"):
            mapping_from("X", bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"user_search_base": ""}, "ITSM_LDAP_USER_SEARCH_BASE"),
        ({"user_search_filter": "(uid=ada)"}, "ITSM_LDAP_USER_SEARCH_FILTER"),
        ({"group_type": "memberOf"}, "ITSM_LDAP_GROUP_TYPE"),
    ],
)
def test_a_directory_configuration_that_cannot_work_is_refused(change, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        ldap_settings(**{**LDAP, **change})


def test_single_sign_on_without_a_client_is_refused_at_start():
    env = {**os.environ, "ITSM_OIDC_ISSUER": "https://login.example.com", "ITSM_OIDC_CLIENT_ID": "itsm"}
    env.pop("ITSM_OIDC_CLIENT_SECRET", None)
    done = subprocess.run(
        [sys.executable, "-c", "import django; from django.conf import settings; settings.INSTALLED_APPS"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "itsm_project.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "set ITSM_OIDC_CLIENT_ID and ITSM_OIDC_CLIENT_SECRET too" in done.stderr
