"""The rotations of docs/runbooks/rotate-secrets.md done as an operator does them, on a running platform: gunicorn
restarted with a new DJANGO_SECRET_KEY and the former one in DJANGO_SECRET_KEY_FALLBACKS keeps its users signed in
and its password-reset links valid, then restarted without the fallback ends what was not renewed; the Alertmanager
token likewise, both tokens accepted while the former is a fallback and the former refused once it is removed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.test import override_settings
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from itsm.models import Alert
from tests.deploy.test_nginx_live import database_url
from tests.factories import make_user
from tests.system.processes import BIN, base_env, free_port, http, started, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OLD_KEY, NEW_KEY = "old-" + "k" * 50, "new-" + "n" * 50
OLD_TOKEN, NEW_TOKEN = "old-intake-token-0123456789", "new-intake-token-9876543210"
PASSWORD = "correct-horse-battery"
PRODUCTION_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


class Platform:
    """gunicorn serving the platform on a loopback port of its own, restarted with a new environment on demand, as
    `docker compose up -d` recreates a container whose variables changed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.port = tmp_path, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._runs = 0

    @contextlib.contextmanager
    def running(self, **secrets: str) -> Iterator[Platform]:
        self._runs += 1
        env = base_env(
            DATABASE_URL=database_url(),
            REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            PORT=str(self.port),
            ITSM_VAR_DIR=str(self.tmp_path / "var"),
            ITSM_GUNICORN_WORKERS="1",
            PROMETHEUS_MULTIPROC_DIR=str(self.tmp_path / f"metrics-{self._runs}"),
            **secrets,
        )
        for name in ("DJANGO_SECRET_KEY_FALLBACKS", "ITSM_ALERTMANAGER_TOKEN_FALLBACKS"):
            env.setdefault(name, "")  # a fallback left out is a fallback removed
        command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"]
        with started(command, env, self.tmp_path / f"gunicorn-{self._runs}.log"):
            assert wait_for(f"{self.base}/health/", timeout=60)["status"] in {"ok", "degraded"}
            yield self


def signed_in(platform: Platform, browser: requests.Session) -> bool:
    response = browser.get(f"{platform.base}/portal/", allow_redirects=False, timeout=30)
    assert response.status_code in {200, 302}, response.status_code
    return response.status_code == 200


def sign_in(platform: Platform, username: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{platform.base}/portal/sign-in/", timeout=30)
    assert form.status_code == 200
    answer = browser.post(
        f"{platform.base}/portal/sign-in/",
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{platform.base}/portal/sign-in/"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text[:500]
    assert signed_in(platform, browser)
    return browser


def reset_link_valid(platform: Platform, path: str) -> bool:
    """Django's confirm view: a valid link redirects to the set-password form, a spent or forged one says so."""
    response = requests.get(f"{platform.base}{path}", allow_redirects=False, timeout=30)
    if response.status_code == 302:
        return response.headers["Location"].endswith("/set-password/")
    assert response.status_code == 200
    return False


def test_a_new_secret_key_with_the_former_as_fallback_signs_no_one_out_and_removing_it_ends_the_unrenewed(
    tmp_path: Path, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS  # the hashes gunicorn's settings can check
    make_user("rita")
    make_user("alex")
    platform = Platform(tmp_path)

    with platform.running(DJANGO_SECRET_KEY=OLD_KEY):
        active, away = sign_in(platform, "rita"), sign_in(platform, "alex")  # sessions signed with the former key
    # The link the platform mails with the former key (after the sign-in: a new last_login spends older links).
    rita = get_user_model().objects.get(username="rita")
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        token = PasswordResetTokenGenerator().make_token(rita)
    reset = f"/portal/password-reset/{urlsafe_base64_encode(force_bytes(rita.pk))}/{token}/"

    with platform.running(DJANGO_SECRET_KEY=NEW_KEY, DJANGO_SECRET_KEY_FALLBACKS=OLD_KEY):
        assert signed_in(platform, active)  # and the session is re-signed with the new key
        assert reset_link_valid(platform, reset)

    with platform.running(DJANGO_SECRET_KEY=NEW_KEY):
        assert not signed_in(platform, away)  # not back during the window: signed out when the fallback went
        assert signed_in(platform, active)  # back during the window: renewed
        assert not reset_link_valid(platform, reset)

    with platform.running(DJANGO_SECRET_KEY=OLD_KEY + "-leaked"):  # after a leak: a new key alone, no fallback
        assert not signed_in(platform, active)


def alert(platform: Platform, token: str, fingerprint: str) -> int:
    body = {
        "version": "4",
        "status": "firing",
        "groupKey": fingerprint,
        "receiver": "itsm",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": "warning", "service": "storage"},
                "annotations": {"summary": "Disk full"},
                "startsAt": "2026-12-03T10:00:00Z",
                "fingerprint": fingerprint,
            }
        ],
    }
    status, _, _ = http("POST", f"{platform.base}/api/v1/alerts/alertmanager/", body, bearer=token, timeout=30)
    return status


def test_the_alertmanager_token_rotates_on_a_running_platform_without_a_refused_delivery(tmp_path: Path) -> None:
    platform = Platform(tmp_path)
    with platform.running(ITSM_ALERTMANAGER_TOKEN=OLD_TOKEN):
        assert alert(platform, OLD_TOKEN, "before") == 200
        assert alert(platform, NEW_TOKEN, "too-early") == 401

    with platform.running(ITSM_ALERTMANAGER_TOKEN=NEW_TOKEN, ITSM_ALERTMANAGER_TOKEN_FALLBACKS=OLD_TOKEN):
        assert alert(platform, OLD_TOKEN, "old-during") == 200  # Alertmanager not yet moved
        assert alert(platform, NEW_TOKEN, "new-during") == 200  # Alertmanager moved
        assert alert(platform, "some-other-token", "forged") == 401

    with platform.running(ITSM_ALERTMANAGER_TOKEN=NEW_TOKEN):
        assert alert(platform, OLD_TOKEN, "old-after") == 401
        assert alert(platform, NEW_TOKEN, "new-after") == 200

    assert set(Alert.objects.values_list("fingerprint", flat=True)) == {
        "before",
        "old-during",
        "new-during",
        "new-after",
    }
