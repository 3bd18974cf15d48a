"""Shared admin pieces: role-based permissions for agents, the staff user list."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from itsm.roles import Role, is_staff_role

User = get_user_model()


def staff_users() -> QuerySet[Any]:
    """Who can be assigned a ticket: agents and admins (a superuser is an admin)."""
    return (
        User.objects.filter(
            Q(is_superuser=True) | Q(pk__in=User.objects.filter(groups__name__in=[Role.AGENT, Role.ADMIN]).values("pk"))
        )
        .filter(is_active=True)
        .order_by("username")
    )


class StaffRolePermissions:
    """Agents work tickets in the admin by their role, as in the API, without Django model permissions."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff_role(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff_role(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff_role(request.user)
