"""Who can be given work."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from itsm.roles import staff_q


def assignable_users() -> QuerySet[Any]:
    """Who can be assigned a ticket or command an incident: active agents and admins (a superuser is an admin)."""
    return get_user_model().objects.filter(staff_q(), is_active=True).order_by("username")
