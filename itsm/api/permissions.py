from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from itsm.roles import Role, is_staff_role, role_of


class IsAgentOrReadOnly(BasePermission):
    """Every signed-in user reads; agents and admins write."""

    message = "Only agents and admins can change this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated) and (
            request.method in SAFE_METHODS or is_staff_role(request.user)
        )


class IsAdminOrReadOnly(BasePermission):
    """Every signed-in user reads; admins write."""

    message = "Only admins can change this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated) and (
            request.method in SAFE_METHODS or role_of(request.user) == Role.ADMIN
        )
