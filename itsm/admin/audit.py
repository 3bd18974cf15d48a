"""The audit trail in the admin (docs/security.md#audit-trail): django-auditlog's list of every row, deleted
objects' included, filtered by type, action and correlation id (the request id), for admins only and read-only."""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.http import HttpRequest

from itsm.admin.base import AdminRolePermissions

admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditEntryAdmin(AdminRolePermissions, LogEntryAdmin):
    # "changes" and "timestamp" would be a sequential scan of a JSON column per search: the object and the actor.
    search_fields = ["object_repr", "actor__username", "actor_email"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the trail is deleted only by its retention (itsm.services.cleanup)
