"""Point-in-time recovery drills (read-only): agents and admins see each drill's RPO, RTO and outcome."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from itsm.admin.base import AdminWritePermissions
from itsm.models import RecoveryDrill
from itsm.models.pitr import RECORDED_FIELDS


@admin.register(RecoveryDrill)
class RecoveryDrillAdmin(AdminWritePermissions, admin.ModelAdmin):
    list_display = ["id", "status", "trigger", "started_at", "target_time", "rpo_seconds", "rto_seconds"]
    list_filter = ["status", "trigger"]
    date_hierarchy = "started_at"
    readonly_fields = RECORDED_FIELDS

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # a drill is run by Beat or `manage.py pitr_drill`

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what was proven stays
