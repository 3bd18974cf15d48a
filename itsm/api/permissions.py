"""One DRF permission class per rule of itsm.roles. Object visibility (a requester's own tickets) is the
querysets' job (itsm.queries), so these only look at the role and the method."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from itsm.roles import is_admin, is_staff_role


def _signed_in(request: Request) -> bool:
    return bool(request.user and request.user.is_authenticated)


class IsAgentOrReadOnly(BasePermission):
    """Every signed-in user reads; agents and admins write."""

    message = "Only agents and admins can change this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _signed_in(request) and (request.method in SAFE_METHODS or is_staff_role(request.user))


class IsAdminOrReadOnly(BasePermission):
    """Every signed-in user reads; admins write."""

    message = "Only admins can change this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _signed_in(request) and (request.method in SAFE_METHODS or is_admin(request.user))


class IsAgent(BasePermission):
    """Agents and admins only, whatever the method (how things are run: histories, post-mortems)."""

    message = "Only agents and admins can see this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _signed_in(request) and is_staff_role(request.user)


class IsAgentReadsAdminWrites(BasePermission):
    """Agents and admins read; only admins act (backups, scheduled jobs). Requesters see nothing."""

    message = "Agents and admins can read this; only admins can act on it."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (_signed_in(request) and is_staff_role(request.user)):
            return False
        return request.method in SAFE_METHODS or is_admin(request.user)


class IsAdmin(BasePermission):
    """Admins only, whatever the method (the audit trail)."""

    message = "Only admins can see this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _signed_in(request) and is_admin(request.user)
