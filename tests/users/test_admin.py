"""Users in the admin with their role: listed, filtered and changed through the user service."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from tests.conftest import page_text
from tests.factories import make_user

# --- Users and roles ---------------------------------------------------------------------------------------


def test_the_user_changelist_shows_the_role_of_each_user(
    operator: Client, requester: Any, agent: Any, django_assert_max_num_queries: Any
) -> None:
    for number in range(20):
        make_user(f"extra{number}", "agent")
    with django_assert_max_num_queries(11):  # +1: whether the operator has an authenticator app
        response = operator.get("/admin/auth/user/")
    page = page_text(response)
    assert "column-role" in page
    rows = {user.username: user for user in response.context["cl"].result_list}
    role_column = response.context["cl"].model_admin.role
    assert role_column(rows["rita"]) == "requester"
    assert role_column(rows["alice"]) == "agent"
    assert role_column(rows["adam"]) == "admin"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("requester", {"rita", "norole"}),
        ("agent", {"alice"}),
        ("admin", {"adam", "root"}),
    ],
)
def test_the_user_changelist_filters_by_role(
    operator: Client, requester: Any, agent: Any, role: str, expected: set[str]
) -> None:
    get_user_model().objects.create_user("norole", password="correct-horse-battery")
    root = get_user_model().objects.create_superuser("root", password="correct-horse-battery")
    root.groups.add(*Group.objects.exclude(name="admin"))
    response = operator.get("/admin/auth/user/", {"role": role})
    assert response.status_code == 200
    names = [user.username for user in response.context["cl"].result_list]
    assert set(names) == expected
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("action", "role"), [("make_agent", "agent"), ("make_admin", "admin"), ("make_requester", "requester")]
)
def test_the_user_role_actions_leave_each_user_with_exactly_one_role(
    operator: Client, admin: Any, requester: Any, agent: Any, action: str, role: str
) -> None:
    selected = [requester.pk, agent.pk, admin.pk]
    response = operator.post("/admin/auth/user/", {"action": action, "_selected_action": selected}, follow=True)
    assert response.status_code == 200
    assert "2 users are now" in page_text(response)
    for user in get_user_model().objects.filter(pk__in=[requester.pk, agent.pk]):
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.is_staff == (role != "requester")
        assert user.is_superuser == (role == "admin")
        assert user.has_usable_password()
    admin.refresh_from_db()
    assert admin.is_superuser
    assert list(admin.groups.values_list("name", flat=True)) == ["admin"]
