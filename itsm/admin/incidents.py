"""Incidents in the admin: the list (open or closed, by severity), bulk acknowledge and resolve, and each incident's
page with its lifecycle buttons, timeline, "page again" and post-mortem above the edit form (incidents_desk.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.admin.base import StaffRolePermissions, staff_users
from itsm.admin.desk import DeskPages
from itsm.admin.events import move_selected
from itsm.admin.incidents_desk import incident_desk_context, incident_desk_urls
from itsm.admin.versioned import VersionedAdmin
from itsm.exceptions import InvalidInput
from itsm.lifecycles import INCIDENT_CLOSED_STATUSES
from itsm.models import Incident
from itsm.models.incidents import EDITABLE_FIELDS, RESPONSE_FIELDS, STATE_TIMES
from itsm.services.incidents import incident_create, incident_transition, incident_update
from itsm.services.publication import publication_checked


class IncidentForm(forms.ModelForm):
    """The publication rules of the service, as messages on the form's fields."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            data["public_title"] = publication_checked(
                public=data.get("public", False), public_title=data.get("public_title", ""), noun="incident"
            )
        except InvalidInput as exc:
            for field, errors in exc.errors.items():
                self.add_error(field, errors)
        return data


class StateFilter(admin.SimpleListFilter):
    """Open (still being worked: it pages, escalates and takes alerts) or closed (resolved or reviewed)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Open"), ("closed", "Closed (resolved or reviewed)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Incident]) -> QuerySet[Incident]:
        closed = sorted(INCIDENT_CLOSED_STATUSES)
        if self.value() == "open":
            return queryset.exclude(status__in=closed)
        if self.value() == "closed":
            return queryset.filter(status__in=closed)
        return queryset


def _move_all(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Incident], to: str) -> None:
    def move(incident_id: int) -> None:
        incident_transition(incident_id=incident_id, actor=request.user, to=to, note="From the admin.")

    ids = list(queryset.values_list("id", flat=True))
    move_selected(modeladmin, request, ids, to=to, move=move, noun="incident", label="INC-")


@admin.register(Incident)
class IncidentAdmin(VersionedAdmin, StaffRolePermissions, DeskPages):
    desk_urls_of = incident_desk_urls
    desk_context_of = incident_desk_context

    form = IncidentForm
    list_display = [
        "id",
        "title",
        "public",
        "severity",
        "status",
        "source",
        "commander",
        "detected_at",
        "response_due_at",
        "response_target_missed",
    ]
    list_filter = [StateFilter, "status", "severity", "source", "public", "response_target_missed", "services"]
    search_fields = ["=id", "title", "summary", "public_title"]
    list_select_related = ["commander"]
    date_hierarchy = "detected_at"
    filter_horizontal = ["services"]
    raw_id_fields = ["linked_tickets"]
    readonly_fields = [
        "status",
        "source",
        "detected_at",
        *STATE_TIMES,
        *RESPONSE_FIELDS,
        "next_escalation_at",
        "group_key",
        "created_by",
        "updated_at",
    ]
    fields = [
        "title",
        "summary",
        "severity",
        "services",
        "commander",
        "linked_tickets",
        "public",
        "public_title",
        *readonly_fields,
    ]
    actions = ["acknowledge", "resolve"]
    show_full_result_count = False

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "commander":
            kwargs["queryset"] = staff_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request)

    def save_model(self, request: HttpRequest, obj: Incident, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
            incident_update(incident_id=obj.pk, actor=request.user, changes=changes)
        else:
            created = incident_create(
                actor=request.user,
                title=data["title"],
                summary=data.get("summary", ""),
                severity=data["severity"],
                commander=data.get("commander"),
                public=data.get("public", False),
                public_title=data.get("public_title", ""),
            )
            obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Relations go through the service too, so each change is on the timeline.
        form.instance.refresh_from_db()
        changes = {name: list(form.cleaned_data[name]) for name in ("services", "linked_tickets")}
        incident_update(incident_id=form.instance.pk, actor=request.user, changes=changes)

    @admin.action(description="Acknowledge selected incidents")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        _move_all(self, request, queryset, Incident.Status.ACKNOWLEDGED)

    @admin.action(description="Resolve selected incidents")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        _move_all(self, request, queryset, Incident.Status.RESOLVED)
