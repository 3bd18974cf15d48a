"""User names normalised (NFKC) and unique in any case: `Agent` and a full-width `ａｇｅｎｔ` cannot sit beside
`agent`, wherever a user is made or renamed."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client

from itsm.exceptions import InvalidInput
from itsm.services.users import TAKEN, user_upsert

pytestmark = pytest.mark.django_db
User = get_user_model()
NEW_PASSWORD = "a-fresh-horse-battery"


@pytest.mark.parametrize("name", ["Alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ"])
def test_the_admin_refuses_a_new_user_whose_name_differs_only_in_case_or_width(operator: Client, agent: Any, name):
    response = operator.post(
        "/admin/auth/user/add/",
        {"username": name, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [TAKEN]
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_the_admin_refuses_renaming_a_user_to_anothers_name_in_capitals(operator: Client, agent: Any, requester):
    page = operator.get(f"/admin/auth/user/{requester.pk}/change/")
    data = {key: value for key, value in page.context["adminform"].form.initial.items() if value is not None}
    data.update({"username": "ALICE", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "groups": []})
    data.pop("password", None)
    data.pop("user_permissions", None)
    response = operator.post(f"/admin/auth/user/{requester.pk}/change/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [TAKEN]


def test_the_admin_still_saves_a_user_under_their_own_name(operator: Client, requester: Any):
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    response = operator.post("/admin/auth/user/add/", {"username": "ｎｅｗｃｏｍｅｒ", **data})
    assert response.status_code == 302
    assert User.objects.filter(username="newcomer").exists()  # stored normalised


def test_the_service_and_the_command_refuse_the_name_with_a_field_message(agent: Any):
    with pytest.raises(InvalidInput) as refused:
        user_upsert(username="Alice", role="agent", password=None)
    assert refused.value.errors == {"username": [TAKEN]}
    with pytest.raises(CommandError, match="username: A user with that username already exists"):
        call_command("add_user", "ＡＬＩＣＥ", role="agent")
    # The user's own name, or its full-width form (the same name once normalised), still updates them.
    for name in ("alice", "ａｌｉｃｅ"):
        user, created = user_upsert(username=name, role="admin", password=None)
        assert (user.pk, user.username, created) == (agent.pk, "alice", False)


def test_the_database_refuses_a_duplicate_in_another_case(agent: Any):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="ALICE")


def test_the_migration_normalises_names_and_names_the_clashes_it_cannot_settle(agent: Any):
    migration = importlib.import_module("itsm.migrations.0019_sign_in_throttle_and_usernames")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {migration.INDEX}")  # as before the migration; rolled back below
        User.objects.create(username="ｏｓｃａｒ")
        migration.normalise_usernames(apps, None)
        assert User.objects.filter(username="oscar").exists()

        User.objects.create(username="ALICE")
        with pytest.raises(RuntimeError, match=r"'alice' and 'ALICE'.*Rename one of each"):
            migration.normalise_usernames(apps, None)
        transaction.set_rollback(True)
