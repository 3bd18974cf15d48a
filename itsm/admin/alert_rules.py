"""Alert rules evaluated by Celery: edited here, their state and last value shown."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from itsm.admin.base import AdminRolePermissions
from itsm.models import AlertRule


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = [
            "name",
            "probe",
            "expression",
            "comparison",
            "threshold",
            "for_seconds",
            "severity",
            "service",
            "summary",
            "enabled",
        ]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("probe") == AlertRule.Probe.PROMQL and not (data.get("expression") or "").strip():
            self.add_error("expression", "A PromQL rule needs an expression.")
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(AdminRolePermissions, admin.ModelAdmin):
    form = AlertRuleForm
    list_display = [
        "name",
        "probe",
        "comparison",
        "threshold",
        "for_seconds",
        "severity",
        "service",
        "enabled",
        "state",
        "last_value",
        "last_evaluated_at",
        "last_error",
    ]
    list_filter = ["enabled", "state", "severity", "probe"]
    search_fields = ["name", "expression"]
    readonly_fields = ["state", "pending_since", "firing_since", "last_value", "last_evaluated_at", "last_error"]
