"""Roles are Django groups: requester (the default), agent, admin. A superuser is an admin."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    REQUESTER = "requester"
    AGENT = "agent"
    ADMIN = "admin"


def role_of(user: Any) -> Role:
    """The user's role, read once per user object (the groups query is remembered on it)."""
    cached = getattr(user, "_itsm_role", None)
    if cached is not None:
        return cached
    if not getattr(user, "is_authenticated", False):
        role = Role.REQUESTER
    elif user.is_superuser:
        role = Role.ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = Role.ADMIN if Role.ADMIN in names else Role.AGENT if Role.AGENT in names else Role.REQUESTER
    user._itsm_role = role
    return role


def is_staff_role(user: Any) -> bool:
    """Agents and admins work every ticket."""
    return role_of(user) in (Role.AGENT, Role.ADMIN)
