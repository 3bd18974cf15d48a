"""Integration tokens: listed, issued (the token shown once) and revoked by admins; never edited or deleted, so the
list stays the record of every token that was."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from itsm.admin.base import AdminRolePermissions
from itsm.models import IntegrationToken
from itsm.services.integrations import (
    default_expiry,
    integration_token_errors,
    integration_token_issue,
    integration_token_revoke,
)


class IssueTokenForm(forms.ModelForm):
    class Meta:
        model = IntegrationToken
        fields = ["name", "scope", "expires_at"]
        help_texts = {
            "name": "What calls with it, e.g. grafana or backup-script: it becomes the name of the token's account "
            "in the audit trail (letters, digits, '.', '_' or '-').",
            "scope": "read: read what an agent reads. tickets / incidents: work those (and read the catalogue). "
            "admin: everything an admin does.",
            "expires_at": "The token stops working then; it cannot be extended, only replaced by a new one.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].initial = default_expiry

    def validate_unique(self) -> None:
        """The service's rules below say it with the reason (a name is unique without case)."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if {"name", "scope", "expires_at"} <= data.keys():
            errors = integration_token_errors(
                name=data["name"].strip(), scope=data["scope"], expires_at=data["expires_at"]
            )
            for field, field_errors in errors.items():
                for error in field_errors:
                    self.add_error(field, error)
        return data


@admin.register(IntegrationToken)
class IntegrationTokenAdmin(AdminRolePermissions, admin.ModelAdmin):
    list_display = ["name", "scope", "state", "expires_at", "last_used_at", "created_by", "created_at"]
    list_filter = ["scope"]
    list_select_related = ["created_by"]
    search_fields = ["name"]
    actions = ["revoke_tokens"]
    readonly_fields = [
        "name",
        "scope",
        "account",
        "key",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]

    @admin.display(description="state")
    def state(self, obj: IntegrationToken) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        return "expired" if obj.expires_at <= timezone.now() else "live"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token is issued and revoked, never edited: its scope and expiry are what was agreed

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked, not deleted, so the record stays

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = IssueTokenForm
            kwargs["fields"] = ["name", "scope", "expires_at"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def save_model(self, request: HttpRequest, obj: IntegrationToken, form: Any, change: bool) -> None:
        """Issued by the service, as by the command; the token is shown once, in the message above the list."""
        row, token = integration_token_issue(
            name=obj.name.strip(), scope=obj.scope, expires_at=obj.expires_at, created_by=request.user
        )
        for field in IntegrationToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(row, field.attname))
        obj._state.adding = False
        self.message_user(
            request,
            f"The token of {row.name}: {token} — copy it now, it is not shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens (their next request is refused)")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[IntegrationToken]) -> None:
        revoked = sum(integration_token_revoke(row, by=request.user) for row in queryset)
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)
