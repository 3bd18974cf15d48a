"""Tickets in the admin: filters, search, inline comments, attachments and events, the SLA policy and the
satisfaction rating, bulk assign and priority."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from itsm.admin.attachments import AttachmentInline, attachment_formset_save
from itsm.admin.base import StaffRolePermissions, staff_users
from itsm.admin.events import EventInline
from itsm.admin.satisfaction import rating_summary
from itsm.models import Attachment, Comment, Ticket
from itsm.models.tickets import RECORDED_FIELDS
from itsm.roles import is_staff_role
from itsm.services.tickets import ticket_create, ticket_update


class CommentInline(StaffRolePermissions, admin.TabularInline):
    """Comments are written through the ticket service (events, first response), so they are read-only here."""

    model = Comment
    extra = 0
    fields = ("created_at", "author", "internal", "body")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Comment]:
        return super().get_queryset(request).select_related("author")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TicketEventInline(EventInline):
    fk_name = "ticket"


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=staff_users())


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Ticket.Priority.choices)


BULK_PREVIEW = 20


def _bulk_update(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Ticket],
    form_class: type[forms.Form],
    field: str,
    title: str,
) -> HttpResponse | None:
    """Ask for the new value on an intermediate page, then apply it through the ticket service, one event each."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        value = form.cleaned_data[field]
        # Listed first: the queryset may filter on the very field being changed.
        ids = list(queryset.values_list("id", flat=True))
        updated = 0
        for ticket_id in ids:
            try:
                ticket_update(ticket_id=ticket_id, actor=request.user, expected_version=None, changes={field: value})
            except Ticket.DoesNotExist:
                continue  # deleted by someone else meanwhile
            updated += 1
        modeladmin.message_user(request, f"Updated {updated} tickets.", messages.SUCCESS)
        return None
    select_across = request.POST.get("select_across") == "1"
    count = queryset.count()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "count": count,
        "preview": queryset[:BULK_PREVIEW],
        "more": max(count - BULK_PREVIEW, 0),
        # "All N matching tickets" is sent back as the flag, not as N ids (Django refuses over 1,000 fields).
        "select_across": select_across,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME)[:1]
        if select_across
        else queryset.values_list("id", flat=True),
        "action": request.POST["action"],
        "opts": modeladmin.model._meta,
    }
    return render(request, "admin/itsm/ticket/bulk_change.html", context)


@admin.register(Ticket)
class TicketAdmin(StaffRolePermissions, admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "status",
        "priority",
        "sla_status",
        "sla_policy",
        "service",
        "requester",
        "assignee",
        "created_at",
        "resolution_due_at",
    ]
    list_filter = [
        "status",
        "priority",
        "sla_status",
        "sla_policy",
        "service",
        "category",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["=id", "title", "description", "requester__username"]
    list_select_related = ["service", "requester", "assignee", "sla_policy"]
    date_hierarchy = "created_at"
    raw_id_fields = ["requester"]
    readonly_fields = [*RECORDED_FIELDS, "sla_at_risk_at", "version", "satisfaction"]
    inlines = [CommentInline, AttachmentInline, TicketEventInline]
    actions = ["assign", "change_priority"]
    show_full_result_count = False

    @admin.display(description="Satisfaction")
    def satisfaction(self, ticket: Ticket) -> str:
        return rating_summary(ticket)

    @admin.action(description="Assign selected tickets to an agent")
    def assign(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        return _bulk_update(self, request, queryset, AssignForm, "assignee", "Assign tickets")

    @admin.action(description="Change the priority of selected tickets")
    def change_priority(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        return _bulk_update(self, request, queryset, PriorityForm, "priority", "Change priority")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        # The change page shows the policy the ticket runs on: joined here rather than read on its own. (The
        # changelist applies list_select_related only to a queryset without select_related, so it is named here.)
        return super().get_queryset(request).select_related(*self.list_select_related)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_staff_role(request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The ticket service lets no one move a ticket to another requester.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "requester"] if obj is not None else fields

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Attachment:
            attachment_formset_save(request, formset)
        else:
            super().save_formset(request, form, formset, change)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "assignee":
            kwargs["queryset"] = staff_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
            ticket_update(ticket_id=obj.pk, actor=request.user, expected_version=None, changes=changes)
        else:
            fields = {
                name: form.cleaned_data.get(name)
                for name in ("title", "description", "priority", "category", "service", "assignee")
            }
            created = ticket_create(requester=form.cleaned_data["requester"], actor=request.user, **fields)
            obj.pk = created.pk
