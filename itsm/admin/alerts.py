"""Alerts as received from Alertmanager and the alert rules: read-only, for agents and admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from itsm.admin.base import StaffRolePermissions
from itsm.models import Alert


@admin.register(Alert)
class AlertAdmin(StaffRolePermissions, admin.ModelAdmin):
    list_display = [
        "alertname",
        "status",
        "severity",
        "service",
        "incident",
        "starts_at",
        "last_received_at",
        "receive_count",
    ]
    list_filter = ["status", "severity", "service"]
    search_fields = ["alertname", "fingerprint"]
    list_select_related = ["service", "incident"]
    readonly_fields = [field.name for field in Alert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
