"""The SLA policy and its business calendars; saving either recomputes open tickets' due times."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.admin.base import AdminRolePermissions
from itsm.models import BusinessCalendar, Holiday, SlaPolicy
from itsm.tasks.sla import recompute_sla

logger = logging.getLogger(__name__)


class HolidayInline(AdminRolePermissions, admin.TabularInline):
    model = Holiday
    extra = 1


def _queue_recompute(modeladmin: admin.ModelAdmin, request: HttpRequest) -> None:
    """Due times depend on the policy, its calendar and holidays: recompute open tickets in the background."""
    try:
        recompute_sla.delay()
    except Exception:  # the broker is down: say so, the operator can run the action later
        logger.exception("could not queue the SLA recompute")
        modeladmin.message_user(
            request, "The recompute of due times could not be queued: run the action later.", messages.WARNING
        )
    else:
        modeladmin.message_user(request, "The due times of open tickets are being recomputed.", messages.INFO)


def _recompute_after_commit(modeladmin: admin.ModelAdmin, request: HttpRequest) -> None:
    transaction.on_commit(lambda: _queue_recompute(modeladmin, request))


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(AdminRolePermissions, admin.ModelAdmin):
    list_display = ["name", "kind", "time_zone", "day_start", "day_end"]
    inlines = [HolidayInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change:
            _recompute_after_commit(self, request)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(AdminRolePermissions, admin.ModelAdmin):
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
        _queue_recompute(self, request)
