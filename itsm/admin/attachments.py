"""Attachments on the ticket's admin page: listed read-only, each downloaded through the API's download (the same
visibility check), and deleted by admins through the attachment service (its timeline entry and file removal)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from itsm.admin.base import StaffRolePermissions
from itsm.models import Attachment
from itsm.services.attachments import attachment_delete


class AttachmentInline(StaffRolePermissions, admin.TabularInline):
    """Files are added through the API (or by mail); here agents read them and admins tick "delete"."""

    model = Attachment
    extra = 0
    fields = ("download", "content_type", "size", "comment", "uploaded_by", "created_at", "sha256")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attachment]:
        return super().get_queryset(request).select_related("uploaded_by", "comment")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="file")
    def download(self, attachment: Attachment) -> str:
        url = reverse("attachment-download", args=[attachment.pk])
        return format_html('<a href="{}">{}</a>', url, attachment.filename)


def attachment_formset_save(request: HttpRequest, formset: BaseInlineFormSet) -> None:
    """The rows ticked "delete" go through the service; nothing else on the inline is editable. The lists are the
    ones formset.save() would leave for the admin's change message."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.deleted_forms:
        if form.instance.pk is not None:
            attachment_delete(attachment_id=form.instance.pk, actor=request.user)
            formset.deleted_objects.append(form.instance)
