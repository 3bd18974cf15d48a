"""Shared admin pieces: role-based permissions for agents, the staff user list."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.queries import assignable_users
from itsm.roles import is_staff_role

User = get_user_model()


def staff_users() -> QuerySet[Any]:
    return assignable_users()


class StaffRolePermissions:
    """Agents work tickets in the admin by their role, as in the API, without Django model permissions."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff_role(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff_role(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff_role(request.user)
