"""SLA policies with the cases they apply to, and their business calendars; saving either (or deleting a policy)
recomputes open tickets' due times, each on the policy that now applies to it."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.admin.base import AdminRolePermissions
from itsm.models import BusinessCalendar, Holiday, SlaPolicy, SlaPolicyScope
from itsm.tasks.sla import recompute_sla

logger = logging.getLogger(__name__)


class HolidayInline(AdminRolePermissions, admin.TabularInline):
    model = Holiday
    extra = 1


class ScopeFormSet(forms.BaseInlineFormSet):
    """Two rows of one page naming the same case: the database would refuse the second one with an error page.
    (A case another policy holds is caught by each row's own constraint check.)"""

    def clean(self) -> None:
        super().clean()
        seen: set[tuple[int | None, str]] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            service = data.get("service")
            case = (service.pk if service is not None else None, data.get("priority", ""))
            if case in seen:
                raise forms.ValidationError("The same service and priority are named twice.")
            seen.add(case)


class SlaPolicyScopeInline(AdminRolePermissions, admin.TabularInline):
    """Which tickets the policy applies to. Tickets that no policy names run on the default policy."""

    model = SlaPolicyScope
    formset = ScopeFormSet
    extra = 1
    verbose_name = "case"
    verbose_name_plural = (
        "Applies to (the most specific case wins: service and priority, then service, then priority; "
        "the default policy takes the rest)"
    )


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
    list_display = ["name", "is_default", "calendar", "applies_to"]
    inlines = [SlaPolicyScopeInline]
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[SlaPolicy]:
        return super().get_queryset(request).select_related("calendar").prefetch_related("scopes__service")

    @admin.display(description="Applies to")
    def applies_to(self, policy: SlaPolicy) -> str:
        cases = "; ".join(str(scope) for scope in policy.scopes.all())
        if policy.is_default:
            return f"{cases}; anything else" if cases else "anything no other policy names"
        return cases or "nothing (no case named)"

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        _recompute_after_commit(self, request)

    def delete_model(self, request: HttpRequest, obj: SlaPolicy) -> None:
        super().delete_model(request, obj)
        _recompute_after_commit(self, request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SlaPolicy]) -> None:
        super().delete_queryset(request, queryset)
        _recompute_after_commit(self, request)

    @admin.action(description="Recompute the due times of open tickets")
    def recompute(self, request: HttpRequest, queryset: QuerySet[SlaPolicy]) -> None:
        _queue_recompute(self, request)
