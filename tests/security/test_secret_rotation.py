"""Secrets rotate without signing anyone out or dropping alerts: the former Django key stays in
DJANGO_SECRET_KEY_FALLBACKS (sessions and password-reset links made with it still work) and the former intake token
in ITSM_ALERTMANAGER_TOKEN_FALLBACKS (Alertmanager's deliveries go on while it is moved to the new one); once a
former secret is removed, what was made with it is refused (docs/runbooks/rotate-secrets.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from rest_framework.test import APIClient

from itsm.models import Alert
from itsm_project.env import env_secrets

pytestmark = pytest.mark.django_db

OLD_KEY, NEW_KEY = "old-" + "k" * 50, "new-" + "n" * 50
OLD_TOKEN, NEW_TOKEN = "old-intake-token-0123456789", "new-intake-token-9876543210"


def signed_in(client: Client) -> bool:
    response = client.get("/portal/")
    return response.status_code == 200 and "/portal/sign-in/" not in response.get("Location", "")


def test_a_session_made_with_the_former_key_survives_while_the_key_is_a_fallback(
    settings: Any, requester, other_requester
) -> None:
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    active, away = Client(), Client()
    active.force_login(requester)
    away.force_login(other_requester)
    assert signed_in(active)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert signed_in(active)  # and its session now carries the new key's hash

    settings.SECRET_KEY_FALLBACKS = []
    assert signed_in(active)
    assert not signed_in(away)  # not seen while the former key was listed: signed out with it


def test_a_password_reset_link_made_with_the_former_key_works_while_it_is_a_fallback(settings: Any, requester):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    token = default_token_generator.make_token(requester)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert default_token_generator.check_token(requester, token)
    settings.SECRET_KEY_FALLBACKS = []
    assert not default_token_generator.check_token(requester, token)


def deliver(token: str, fingerprint: str) -> Any:
    alert = {
        "status": "firing",
        "labels": {"alertname": "DiskFull", "severity": "warning", "service": "storage"},
        "annotations": {"summary": "Disk full"},
        "startsAt": "2026-12-03T10:00:00Z",
        "fingerprint": fingerprint,
    }
    body = {"version": "4", "status": "firing", "groupKey": fingerprint, "receiver": "itsm", "alerts": [alert]}
    return APIClient().post("/api/v1/alerts/alertmanager/", body, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_former_intake_token_is_accepted_beside_the_new_one_until_it_is_removed(settings: Any) -> None:
    settings.ITSM_ALERTMANAGER_TOKEN, settings.ITSM_ALERTMANAGER_TOKEN_FALLBACKS = NEW_TOKEN, [OLD_TOKEN]
    assert deliver(OLD_TOKEN, "a1").status_code == 200
    assert deliver(NEW_TOKEN, "a2").status_code == 200
    assert deliver("some-other-token", "a3").status_code == 401

    settings.ITSM_ALERTMANAGER_TOKEN_FALLBACKS = []
    assert deliver(OLD_TOKEN, "a4").status_code == 401
    assert set(Alert.objects.values_list("fingerprint", flat=True)) == {"a1", "a2"}


def test_former_secrets_are_read_comma_or_newline_separated_from_the_variable_or_its_file(monkeypatch, tmp_path):
    monkeypatch.setenv("ITSM_TEST_FALLBACKS", " a, b ,,c ")
    assert env_secrets("ITSM_TEST_FALLBACKS") == ["a", "b", "c"]
    (tmp_path / "fallbacks").write_text("x\ny,z\n\n")
    monkeypatch.setenv("ITSM_TEST_FALLBACKS_FILE", str(tmp_path / "fallbacks"))
    assert env_secrets("ITSM_TEST_FALLBACKS") == ["x", "y", "z"]
