"""Token authentication reads the token, its user and the user's role in one query (itsm/api/authentication.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient, APIRequestFactory

from itsm.api.authentication import TokenAuthentication
from itsm.roles import Role, role_of
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def authenticate(token: str) -> Any:
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {token}")
    user, _ = TokenAuthentication().authenticate(request)
    return user


@pytest.mark.parametrize("role", ["requester", "agent", "admin"])
def test_the_role_read_with_the_token_is_the_role_of_the_user(role: str) -> None:
    user = make_user(f"someone-{role}", role)
    _, token = AuthToken.objects.create(user=user)
    with CaptureQueriesContext(connection) as queries:
        signed_in = authenticate(token)
        remembered = role_of(signed_in)
    assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]
    assert remembered == Role(role) == role_of(get_user_model().objects.get(pk=user.pk))


def test_a_superuser_without_a_group_is_an_admin() -> None:
    user = get_user_model().objects.create_user("root", password="x-long-password", is_superuser=True)
    _, token = AuthToken.objects.create(user=user)
    assert role_of(authenticate(token)) == Role.ADMIN


def test_a_user_in_both_staff_groups_is_an_admin() -> None:
    user = make_user("both", "agent")
    user.groups.add(make_user("other-admin", "admin").groups.get())
    _, token = AuthToken.objects.create(user=user)
    assert role_of(authenticate(token)) == Role.ADMIN == role_of(get_user_model().objects.get(pk=user.pk))


def test_an_expired_token_is_refused_and_deleted(agent: Any) -> None:
    instance, token = AuthToken.objects.create(user=agent)
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 401
    assert not AuthToken.objects.filter(pk=instance.pk).exists()


def test_a_wrong_token_with_a_known_prefix_is_refused(agent: Any) -> None:
    _, token = AuthToken.objects.create(user=agent)
    forged = token[:15] + ("0" if token[15] != "0" else "1") + token[16:]
    assert APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Token {forged}").status_code == 401
    assert APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_an_inactive_user_is_refused(agent: Any) -> None:
    _, token = AuthToken.objects.create(user=agent)
    get_user_model().objects.filter(pk=agent.pk).update(is_active=False)
    assert APIClient().get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401
