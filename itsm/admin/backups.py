"""Backups: the catalogue (agents read, admins act), "Back up now" as the add form, and a verify action."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.admin.base import AdminWritePermissions
from itsm.exceptions import InvalidInput, NotReady
from itsm.models import Backup
from itsm.models.backups import RECORDED_FIELDS
from itsm.roles import is_admin
from itsm.services.backups import backup_create, backup_verify_queue


class BackupNowForm(forms.ModelForm):
    class Meta:
        model = Backup
        fields = ["kind", "tier"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == Backup.Kind.REDIS and not settings.BACKUP_REDIS_URL:
            raise forms.ValidationError("No Redis is configured (REDIS_URL or BACKUP_REDIS_URL).")
        return data


@admin.register(Backup)
class BackupAdmin(AdminWritePermissions, admin.ModelAdmin):
    list_display = ["id", "kind", "tier", "trigger", "status", "created_at", "size_bytes", "verified_ok", "verified_at"]
    list_filter = ["kind", "tier", "status", "trigger", "verified_ok"]
    search_fields = ["local_path", "s3_key", "sha256"]
    date_hierarchy = "created_at"
    actions = ["verify_backups"]
    readonly_fields = RECORDED_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # copies are deleted by retention only, so the catalogue stays true

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = BackupNowForm
            kwargs["fields"] = ["kind", "tier"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Backup, form: Any, change: bool) -> None:
        """ "Back up now": the record is made and queued by the service, as from the API."""
        try:
            created = backup_create(kind=obj.kind, tier=obj.tier, requested_by=request.user)
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from exc
        obj.pk = created.pk
        obj.created_at = created.created_at

    @admin.action(description="Verify the selected backups (restore into a scratch database)")
    def verify_backups(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        if not is_admin(request.user):
            self.message_user(request, "Only admins can verify backups.", messages.ERROR)
            return
        queued, refused = 0, []
        for backup in queryset:
            try:
                backup_verify_queue(backup_id=backup.pk)
                queued += 1
            except NotReady as exc:
                refused.append(str(exc))
        if queued:
            self.message_user(request, f"{queued} verification(s) queued.", messages.INFO)
        for message in refused:
            self.message_user(request, message, messages.WARNING)
