"""Tickets in the admin, the agents' working desk: the list with its saved queues and bulk actions
(tickets_queues.py), and each ticket's page with its conversation, reply box, moves and SLA clocks (tickets_desk.py)
above the edit form, with the SLA policy it runs on and its satisfaction rating. Every write goes through the
ticket service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from itsm.admin.attachments import AttachmentInline, attachment_formset_save
from itsm.admin.base import StaffRolePermissions, staff_users
from itsm.admin.desk import DeskPages
from itsm.admin.satisfaction import rating_summary
from itsm.admin.tickets_desk import ticket_desk_context, ticket_desk_urls
from itsm.admin.tickets_queues import QueueFilter, assign, change_priority, move, queue_tabs
from itsm.admin.versioned import VersionedAdmin
from itsm.models import Attachment, Ticket
from itsm.models.tickets import RECORDED_FIELDS
from itsm.roles import is_admin, is_staff_role
from itsm.services.tickets import ticket_create, ticket_update


@admin.register(Ticket)
class TicketAdmin(VersionedAdmin, StaffRolePermissions, DeskPages):
    desk_urls_of = ticket_desk_urls
    desk_context_of = ticket_desk_context

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
        QueueFilter,
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
    # The conversation, files and timeline are the desk's thread above the form; admins also get the file list
    # with its delete boxes (attachment_delete).
    inlines = [AttachmentInline]
    actions = [assign, move, change_priority]
    show_full_result_count = False

    @admin.display(description="Satisfaction")
    def satisfaction(self, ticket: Ticket) -> str:
        return rating_summary(ticket)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return list(self.inlines) if obj is not None and is_admin(request.user) else []

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        if request.method == "GET":
            context["queues"] = queue_tabs(request)
        return super().changelist_view(request, context)

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
