"""The Django admin as the operators' tool: tickets with filters and bulk actions, the catalogue, the SLA policy."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from itsm.models import BusinessCalendar, Comment, Event, Holiday, JobRun, Service, SlaPolicy, Team, Ticket
from itsm.roles import Role, is_staff_role
from itsm.services.sla import sla_recompute_open_tickets
from itsm.services.tickets import ticket_create, ticket_update
from itsm.services.users import user_upsert
from itsm.tasks.sla import recompute_sla

logger = logging.getLogger(__name__)

User = get_user_model()


def _staff_users() -> QuerySet[Any]:
    """Who can be assigned a ticket: agents and admins (a superuser is an admin)."""
    return (
        User.objects.filter(
            Q(is_superuser=True) | Q(pk__in=User.objects.filter(groups__name__in=[Role.AGENT, Role.ADMIN]).values("pk"))
        )
        .filter(is_active=True)
        .order_by("username")
    )


class StaffRolePermissions:
    """Agents work tickets in the admin by their role, as in the API, without Django model permissions."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff_role(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff_role(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff_role(request.user)


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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


class EventInline(StaffRolePermissions, admin.TabularInline):
    """The ticket's timeline, append-only."""

    model = Event
    extra = 0
    fields = ("created_at", "actor", "kind", "field", "old_value", "new_value", "note")
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=_staff_users())


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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_staff_role(request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The ticket service lets no one move a ticket to another requester.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "requester"] if obj is not None else fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "assignee":
            kwargs["queryset"] = _staff_users()
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


def _recompute_after_commit(modeladmin: admin.ModelAdmin, request: HttpRequest) -> None:
    """Due times depend on the policy, its calendar and holidays: recompute open tickets in the background."""

    def enqueue() -> None:
        try:
            recompute_sla.delay()
        except Exception:  # the broker is down: say so, the operator can run the action later
            logger.exception("could not queue the SLA recompute")
            modeladmin.message_user(
                request,
                "Saved, but the recompute of due times could not be queued: run the action later.",
                messages.WARNING,
            )
        else:
            modeladmin.message_user(request, "The due times of open tickets are being recomputed.", messages.INFO)

    transaction.on_commit(enqueue)


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "time_zone", "day_start", "day_end"]
    inlines = [HolidayInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change:
            _recompute_after_commit(self, request)


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

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        _recompute_after_commit(self, request)

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
        # The same precedence as itsm.roles.role_of: superuser or admin group, then agent, else requester.
        # Subqueries, not joins, so that a user in several groups is listed once.
        admins = Q(is_superuser=True) | Q(pk__in=User.objects.filter(groups__name=Role.ADMIN).values("pk"))
        agents = Q(pk__in=User.objects.filter(groups__name=Role.AGENT).values("pk"))
        if self.value() == Role.ADMIN:
            return queryset.filter(admins)
        if self.value() == Role.AGENT:
            return queryset.filter(agents).exclude(admins)
        if self.value() == Role.REQUESTER:
            return queryset.exclude(admins).exclude(agents)
        return queryset


admin.site.unregister(User)


@admin.register(User)
class ItsmUserAdmin(UserAdmin):
    list_display = ["username", "email", "role", "is_active", "last_login"]
    list_filter = [RoleListFilter, "is_active"]
    actions = ["make_requester", "make_agent", "make_admin"]

    def _set_role(self, request: HttpRequest, queryset: QuerySet[Any], role: Role) -> None:
        """Through the user service, so that the user ends with exactly one role group and the matching flags."""
        count = 0
        for user in queryset:
            if user.pk == request.user.pk:
                # Demoting oneself by a stray tick would lock the last admin out.
                self.message_user(request, "Your own role was left unchanged.", messages.WARNING)
                continue
            user_upsert(username=user.get_username(), role=role, password=None)
            count += 1
        self.message_user(request, f"{count} users are now {role}s.", messages.SUCCESS)

    @admin.action(description="Make the selected users requesters")
    def make_requester(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_role(request, queryset, Role.REQUESTER)

    @admin.action(description="Make the selected users agents")
    def make_agent(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_role(request, queryset, Role.AGENT)

    @admin.action(description="Make the selected users admins")
    def make_admin(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_role(request, queryset, Role.ADMIN)

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
