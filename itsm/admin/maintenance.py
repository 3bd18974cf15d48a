"""Maintenance windows: schedule and edit them through the services, cancel, start or retry them in bulk."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from itsm.admin.base import StaffRolePermissions
from itsm.exceptions import DomainError, InvalidInput
from itsm.models import MaintenanceWindow
from itsm.models.maintenance import RECORDED_FIELDS
from itsm.services.maintenance import (
    maintenance_create,
    maintenance_transition,
    maintenance_update,
    maintenance_validate,
)

EDITED = [
    "title",
    "description",
    "starts_at",
    "ends_at",
    "recurrence",
    "notify_before",
    "backup_required",
    "silence_alerts",
    "checks",
    "verify_for",
    "owner",
]

RELATIONS = ["services", "notify_users"]


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = [*EDITED, *RELATIONS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if {"starts_at", "ends_at"} - set(data):
            return data
        creating = self.instance.pk is None or data["starts_at"] != self.instance.starts_at
        try:
            maintenance_validate(
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                recurrence=data.get("recurrence", ""),
                checks=data.get("checks", []),
                creating=creating,
                now=timezone.now(),
                verify_for=data.get("verify_for"),
            )
        except InvalidInput as exc:
            for field, errors in exc.errors.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


def _move_all(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[MaintenanceWindow], to: str
) -> None:
    moved, refused = 0, []
    for window_id in queryset.values_list("id", flat=True):
        try:
            maintenance_transition(window_id=window_id, actor=request.user, to=to)
            moved += 1
        except DomainError as exc:
            refused.append(f"MW-{window_id}: {exc}")
    if moved:
        modeladmin.message_user(request, f"{moved} window(s) moved to {to}.", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.WARNING)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(StaffRolePermissions, admin.ModelAdmin):
    form = MaintenanceWindowForm
    list_display = ["id", "title", "status", "starts_at", "ends_at", "recurrence", "series", "owner"]
    list_filter = ["status", "services", "backup_required", "silence_alerts"]
    search_fields = ["=id", "title", "description"]
    list_select_related = ["owner", "series"]
    date_hierarchy = "starts_at"
    filter_horizontal = ["services", "notify_users"]
    readonly_fields = [*RECORDED_FIELDS, "incidents"]
    actions = ["cancel", "retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request)

    def save_model(self, request: HttpRequest, obj: MaintenanceWindow, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = [*EDITED, *RELATIONS]
        if change:
            changes = {name: data[name] for name in form.changed_data if name in fields}
            maintenance_update(window_id=obj.pk, actor=request.user, changes=changes)
        else:
            created = maintenance_create(actor=request.user, **{name: data[name] for name in fields if name in data})
            obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The relations were saved by the service with the window (a series' occurrences copy them)."""

    @admin.action(description="Cancel selected maintenance windows")
    def cancel(self, request: HttpRequest, queryset: QuerySet[MaintenanceWindow]) -> None:
        _move_all(self, request, queryset, MaintenanceWindow.Status.CANCELLED)

    @admin.action(description="Retry selected blocked windows (schedule them again)")
    def retry(self, request: HttpRequest, queryset: QuerySet[MaintenanceWindow]) -> None:
        _move_all(self, request, queryset, MaintenanceWindow.Status.SCHEDULED)
