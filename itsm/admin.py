"""The Django admin as the operators' tool: tickets with filters and bulk actions, the catalogue, the SLA policy."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from itsm.models import BusinessCalendar, Comment, Event, Holiday, JobRun, Service, SlaPolicy, Team, Ticket
from itsm.roles import Role
from itsm.services.sla import sla_recompute_open_tickets
from itsm.services.tickets import ticket_create, ticket_update

User = get_user_model()


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    fields = ["created_at", "author", "internal", "body"]
    readonly_fields = ["created_at", "author"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = Event
    extra = 0
    fields = ("created_at", "actor", "kind", "field", "old_value", "new_value", "note")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.filter(groups__name__in=[Role.AGENT, Role.ADMIN]).distinct()
    )


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Ticket.Priority.choices)


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
        for ticket_id in queryset.values_list("id", flat=True):
            ticket_update(ticket_id=ticket_id, actor=request.user, expected_version=None, changes={field: value})
        modeladmin.message_user(request, f"Updated {queryset.count()} tickets.", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "tickets": queryset,
        "action": request.POST["action"],
        "opts": modeladmin.model._meta,
    }
    return render(request, "admin/itsm/ticket/bulk_change.html", context)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "status",
        "priority",
        "sla_status",
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
        "service",
        "category",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["=id", "title", "description", "requester__username"]
    list_select_related = ["service", "requester", "assignee"]
    date_hierarchy = "created_at"
    raw_id_fields = ["requester"]
    readonly_fields = [
        "status",
        "created_at",
        "updated_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "response_due_at",
        "resolution_due_at",
        "sla_status",
        "sla_at_risk_at",
        "version",
    ]
    inlines = [CommentInline, EventInline]
    actions = ["assign", "change_priority"]
    show_full_result_count = False

    @admin.action(description="Assign selected tickets to an agent")
    def assign(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        return _bulk_update(self, request, queryset, AssignForm, "assignee", "Assign tickets")

    @admin.action(description="Change the priority of selected tickets")
    def change_priority(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        return _bulk_update(self, request, queryset, PriorityForm, "priority", "Change priority")

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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team"]
    list_filter = ["team"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "time_zone", "day_start", "day_end"]
    inlines = [HolidayInline]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "calendar"]
    fieldsets = [
        (None, {"fields": ["name", "is_default", "calendar"]}),
        (
            "Targets in minutes: first response / resolution",
            {
                "fields": [
                    ("critical_response_minutes", "critical_resolution_minutes"),
                    ("high_response_minutes", "high_resolution_minutes"),
                    ("medium_response_minutes", "medium_resolution_minutes"),
                    ("low_response_minutes", "low_resolution_minutes"),
                ]
            },
        ),
    ]
    actions = ["recompute"]

    @admin.action(description="Recompute the due times of open tickets")
    def recompute(self, request: HttpRequest, queryset: QuerySet[SlaPolicy]) -> None:
        count = sla_recompute_open_tickets()
        self.message_user(request, f"Recomputed {count} open tickets.", messages.SUCCESS)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["job", "slot", "status", "started_at", "finished_at"]
    list_filter = ["job", "status"]
    readonly_fields = ["job", "slot", "status", "started_at", "finished_at", "detail"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class RoleListFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(role.value, role.value.title()) for role in Role]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == Role.ADMIN:
            return queryset.filter(groups__name=Role.ADMIN) | queryset.filter(is_superuser=True)
        if self.value():
            return queryset.filter(groups__name=self.value())
        return queryset


admin.site.unregister(User)


@admin.register(User)
class ItsmUserAdmin(UserAdmin):
    list_display = ["username", "email", "role", "is_active", "last_login"]
    list_filter = [RoleListFilter, "is_active"]

    @admin.display(description="role")
    def role(self, obj: Any) -> str:
        names = {group.name for group in obj.groups.all()}
        if obj.is_superuser or Role.ADMIN in names:
            return Role.ADMIN
        return Role.AGENT if Role.AGENT in names else Role.REQUESTER

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).prefetch_related("groups")


admin.site.site_header = "ITSM Platform"
admin.site.site_title = "ITSM Platform"
