"""Shared admin pieces: who may do what on an admin page, by role as in the API (itsm.roles), never by Django's
model permissions; and the staff user list.

Every ModelAdmin and inline of the platform mixes in one of these; a page that refuses a move outright (a record
only the scheduler writes) still says so in its own `has_*_permission`. Through them, every page's History button
shows admins the object's audit trail (docs/security.md#audit-trail): each change from every source, not only the
admin's own.
"""

from __future__ import annotations

from typing import Any

from auditlog.mixins import AuditlogHistoryAdminMixin
from auditlog.registry import auditlog
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from itsm.queries.users import assignable_users
from itsm.roles import is_admin, is_staff_role


def staff_users() -> QuerySet[Any]:
    return assignable_users()


class _RolePermissions(AuditlogHistoryAdminMixin):
    """`readers` see the page, `writers` add and change, `deleters` delete: each a rule of itsm.roles."""

    auditlog_history_per_page = 25

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        """The change form's History: the object's audit trail for admins, when its model is recorded; Django's
        list of admin actions otherwise (agents; models left out of the trail)."""
        if is_admin(request.user) and auditlog.contains(self.model):
            return self.auditlog_history_view(request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def auditlog_history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        """Also at <id>/auditlog/: admins only, as the API's /api/v1/audit/."""
        if not is_admin(request.user):
            raise PermissionDenied
        return super().auditlog_history_view(request, object_id, extra_context)

    @staticmethod
    def readers(user: Any) -> bool:
        return is_staff_role(user)

    @staticmethod
    def writers(user: Any) -> bool:
        return is_staff_role(user)

    @staticmethod
    def deleters(user: Any) -> bool:
        return is_admin(user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.readers(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.readers(request.user)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.writers(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.writers(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deleters(request.user)


class StaffRolePermissions(_RolePermissions):
    """Agents work it (view, add, change), as in the API; admins also delete."""


class AdminWritePermissions(_RolePermissions):
    """Agents read it; admins change it (on-call rotations, backups, job runs)."""

    writers = staticmethod(is_admin)


class AdminRolePermissions(_RolePermissions):
    """Admins only: the catalogue, SLA policies, alert rules, webhooks, people and their channels."""

    readers = writers = staticmethod(is_admin)


class ReadOnlyInlinePermissions(StaffRolePermissions):
    """An inline of records written elsewhere (timelines, delivery attempts, a post-mortem written in the API):
    agents and admins read them on the parent's page; nobody adds, edits or deletes them there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
