"""Who sees which notification."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from itsm.models import Notification
from itsm.roles import is_staff_role


def notifications_visible_to(user: Any) -> QuerySet[Notification]:
    """Agents and admins see every notification; anyone else only the ones sent to them."""
    notifications = Notification.objects.all()
    if not getattr(user, "is_authenticated", False):
        return notifications.none()
    if is_staff_role(user):
        return notifications
    return notifications.filter(recipient=user)
