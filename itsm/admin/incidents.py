"""Incidents with their timeline and post-mortem, acknowledge and resolve actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.admin.base import ReadOnlyInlinePermissions, StaffRolePermissions
from itsm.admin.events import EventInline, move_selected
from itsm.models import Incident, Postmortem
from itsm.models.incidents import POSTMORTEM_FIELDS, RESPONSE_FIELDS, STATE_TIMES
from itsm.services.incidents import incident_create, incident_transition, incident_update


class TimelineInline(EventInline):
    fk_name = "incident"


class PostmortemInline(ReadOnlyInlinePermissions, admin.StackedInline):
    model = Postmortem
    fields = ("status", *POSTMORTEM_FIELDS, "finalized_at")
    readonly_fields = fields


def _move_all(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Incident], to: str) -> None:
    def move(incident_id: int) -> None:
        incident_transition(incident_id=incident_id, actor=request.user, to=to, note="From the admin.")

    ids = list(queryset.values_list("id", flat=True))
    move_selected(modeladmin, request, ids, to=to, move=move, noun="incident", label="INC-")


@admin.register(Incident)
class IncidentAdmin(StaffRolePermissions, admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "severity",
        "status",
        "source",
        "commander",
        "detected_at",
        "response_due_at",
        "response_target_missed",
    ]
    list_filter = ["status", "severity", "source", "response_target_missed", "services"]
    search_fields = ["=id", "title", "summary"]
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
    fields = ["title", "summary", "severity", "services", "commander", "linked_tickets", *readonly_fields]
    inlines = [PostmortemInline, TimelineInline]
    actions = ["acknowledge", "resolve"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request)

    def save_model(self, request: HttpRequest, obj: Incident, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {
                name: data[name] for name in form.changed_data if name in ("title", "summary", "severity", "commander")
            }
            incident_update(incident_id=obj.pk, actor=request.user, changes=changes)
        else:
            created = incident_create(
                actor=request.user,
                title=data["title"],
                summary=data.get("summary", ""),
                severity=data["severity"],
                commander=data.get("commander"),
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
