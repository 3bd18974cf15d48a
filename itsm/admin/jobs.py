"""Runs of the scheduled jobs (read-only), with "run these jobs again now" for admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.admin.base import AdminWritePermissions
from itsm.models import JobRun, JobWatch
from itsm.roles import is_admin
from itsm.services.job_schedule import job_get
from itsm.services.jobs import job_run_request


class StaffReadOnlyAdmin(AdminWritePermissions, admin.ModelAdmin):
    """Records the scheduler writes: agents and admins read them, nobody adds or edits them here."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JobRun)
class JobRunAdmin(StaffReadOnlyAdmin):
    list_display = ["job", "slot", "status", "trigger", "duration", "started_at", "finished_at"]
    list_filter = ["status", "trigger", "job"]
    search_fields = ["job"]
    date_hierarchy = "slot"
    actions = ["run_again_now"]
    readonly_fields = [
        "job",
        "slot",
        "status",
        "trigger",
        "requested_by",
        "started_at",
        "finished_at",
        "duration_seconds",
        "detail",
    ]

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, run: JobRun) -> str:
        return "—" if run.duration_seconds is None else f"{run.duration_seconds:.3f} s"

    @admin.action(description="Run the selected runs' jobs again now (admins)")
    def run_again_now(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        if not is_admin(request.user):
            self.message_user(request, "Only admins can run jobs.", messages.ERROR)
            return
        for name in sorted(set(queryset.values_list("job", flat=True))):
            job = job_get(name)
            if job is None:
                self.message_user(request, f"{name} is no longer in the Beat schedule.", messages.WARNING)
                continue
            run = job_run_request(job=job.name, queue=job.queue, requested_by=request.user)
            self.message_user(request, f"{name}: run #{run.pk} queued on {job.queue}.", messages.INFO)


@admin.register(JobWatch)
class JobWatchAdmin(StaffReadOnlyAdmin):
    """Since when the dead-man switch watches each job (read-only; a job is judged only on later slots)."""

    list_display = ["job", "first_seen_at"]
    search_fields = ["job"]
    readonly_fields = ["job", "first_seen_at"]
