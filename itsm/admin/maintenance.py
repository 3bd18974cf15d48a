"""Maintenance windows: schedule and edit them through the services, cancel or retry them in bulk, and move one from
its page, where its checklist shows how far it got (maintenance_desk.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from itsm.admin.base import StaffRolePermissions
from itsm.admin.desk import DeskPages
from itsm.admin.events import move_selected, timeline_table
from itsm.admin.maintenance_desk import maintenance_desk_context, maintenance_desk_urls
from itsm.admin.versioned import VersionedAdmin
from itsm.exceptions import InvalidInput
from itsm.models import MaintenanceWindow
from itsm.models.maintenance import EDITABLE_FIELDS, RECORDED_FIELDS, RELATIONS
from itsm.queries.maintenance import window_events
from itsm.services.maintenance import maintenance_create, maintenance_update, maintenance_validate
from itsm.services.maintenance_lifecycle import maintenance_transition
from itsm.services.publication import publication_checked


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = [*EDITABLE_FIELDS, *RELATIONS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            data["public_title"] = publication_checked(
                public=data.get("public", False), public_title=data.get("public_title", ""), noun="maintenance window"
            )
        except InvalidInput as exc:
            for field, errors in exc.errors.items():
                self.add_error(field, errors)
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
    def move(window_id: int) -> None:
        maintenance_transition(window_id=window_id, actor=request.user, to=to)

    ids = list(queryset.values_list("id", flat=True))
    move_selected(modeladmin, request, ids, to=to, move=move, noun="window", label="MW-")


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(VersionedAdmin, StaffRolePermissions, DeskPages):
    desk_urls_of = maintenance_desk_urls
    desk_context_of = maintenance_desk_context

    form = MaintenanceWindowForm
    list_display = ["id", "title", "public", "status", "starts_at", "ends_at", "recurrence", "series", "owner"]
    list_filter = ["status", "public", "services", "backup_required", "silence_alerts"]
    search_fields = ["=id", "title", "description", "public_title"]
    list_select_related = ["owner", "series"]
    date_hierarchy = "starts_at"
    filter_horizontal = ["services", "notify_users"]
    readonly_fields = [*RECORDED_FIELDS, "incidents", "history"]
    actions = ["cancel", "retry"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[MaintenanceWindow]:
        return super().get_queryset(request).select_related("backup")

    @admin.display(description="history")
    def history(self, window: MaintenanceWindow) -> str:
        """Every change of the window with who made it (a table, not an inline: nothing here is edited)."""
        return timeline_table(window_events(window)) if window.pk else "-"

    def save_model(self, request: HttpRequest, obj: MaintenanceWindow, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = [*EDITABLE_FIELDS, *RELATIONS]
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
