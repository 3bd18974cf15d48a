"""Tokens taken back: all at once on request, on a password change and on a deactivation; and an absolute lifetime
that continuous use does not stretch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from itsm.services.users import user_upsert

PASSWORD = "correct-horse-battery"

pytestmark = pytest.mark.django_db


def tokens_for(username: str, count: int = 3) -> list[APIClient]:
    clients = []
    for _ in range(count):
        client = APIClient()
        token = client.post("/api/v1/auth/token/", {"username": username, "password": PASSWORD}, format="json")
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
        clients.append(client)
    return clients


def still_valid(clients: list[APIClient]) -> list[int]:
    return [client.get("/api/v1/tickets/").status_code for client in clients]


def test_logoutall_ends_every_token_of_the_user_and_no_one_elses(requester: Any, other_requester: Any):
    ritas, oscars = tokens_for("rita"), tokens_for(other_requester.username, 1)

    assert ritas[0].post("/api/v1/auth/logoutall/").status_code == 204

    assert still_valid(ritas) == [401, 401, 401]
    assert still_valid(oscars) == [200]


def test_logoutall_needs_a_token(anonymous: APIClient):
    assert anonymous.post("/api/v1/auth/logoutall/").status_code == 401


def test_a_password_change_in_the_admin_ends_every_old_token(requester: Any, operator: Client):
    ritas = tokens_for("rita")
    response = operator.post(
        f"/admin/auth/user/{requester.pk}/password/",
        {"password1": "another-horse-battery", "password2": "another-horse-battery", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    assert still_valid(ritas) == [401, 401, 401]


def test_a_password_change_by_the_service_or_the_command_ends_every_old_token(requester: Any, monkeypatch: Any):
    ritas = tokens_for("rita")
    user_upsert(username="rita", role="requester", password="another-horse-battery")
    assert still_valid(ritas) == [401, 401, 401]

    user_upsert(username="rita", role="requester", password=PASSWORD)
    ritas = tokens_for("rita")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "yet-another-horse-battery")
    call_command("changepassword", "rita", stdout=None)
    assert still_valid(ritas) == [401, 401, 401]


def test_a_new_token_after_the_change_works(requester: Any):
    tokens_for("rita")
    user_upsert(username="rita", role="requester", password=PASSWORD)  # the same password, set again
    assert AuthToken.objects.filter(user=requester).count() == 0
    assert still_valid(tokens_for("rita", 1)) == [200]


def test_deactivation_ends_every_token(requester: Any):
    ritas = tokens_for("rita")
    requester.is_active = False
    requester.save()
    assert not AuthToken.objects.filter(user=requester).exists()
    requester.is_active = True
    requester.save()
    assert still_valid(ritas) == [401, 401, 401]  # reactivating does not bring them back


def test_other_changes_to_the_user_keep_the_tokens(requester: Any, settings: Any):
    ritas = tokens_for("rita")
    requester.email = "rita@elsewhere.example"
    requester.save()
    # Django's rehash on sign-in (a stronger hasher configured): the same password, a new hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]
    tokens_for("rita", 1)
    assert get_user_model().objects.get(pk=requester.pk).password.startswith("pbkdf2_sha256$")
    assert still_valid(ritas) == [200, 200, 200]


def test_the_absolute_lifetime_ends_a_token_used_without_a_pause(requester: Any, settings: Any):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        (rita,) = tokens_for("rita", 1)
        for _ in range(23):
            clock.shift(timedelta(hours=1))  # well inside the 10-hour sliding expiry every time
            assert still_valid([rita]) == [200]
        clock.shift(timedelta(minutes=59))
        assert still_valid([rita]) == [200]
        clock.shift(timedelta(minutes=1))  # 24 hours (ITSM_TOKEN_MAX_AGE_HOURS) after it was made
        assert still_valid([rita]) == [401]
    assert not AuthToken.objects.filter(user=requester).exists()


def test_a_token_made_before_the_lifetime_was_set_ends_at_it_too(requester: Any):
    (rita,) = tokens_for("rita", 1)
    token = AuthToken.objects.get(user=requester)
    AuthToken.objects.filter(pk=token.pk).update(
        created=timezone.now() - timedelta(hours=24), expiry=timezone.now() + timedelta(hours=5)
    )
    assert still_valid([rita]) == [401]
