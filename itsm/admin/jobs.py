"""Runs of the scheduled jobs (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from itsm.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["job", "slot", "status", "started_at", "finished_at"]
    list_filter = ["job", "status"]
    readonly_fields = ["job", "slot", "status", "started_at", "finished_at", "detail"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
