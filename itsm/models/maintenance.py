from datetime import timedelta

from django.conf import settings
from django.db import models

from itsm.models.versioned import Versioned


def default_verify_for() -> timedelta:
    """How long a new window's checks keep running after the maintenance (ITSM_MAINTENANCE_VERIFY_MINUTES)."""
    return timedelta(minutes=settings.ITSM_MAINTENANCE_VERIFY_MINUTES)


# Whether the window is published and under which title: editable in every status (a window can be published
# while it runs).
PUBLICATION_FIELDS = ("public", "public_title")
# What people edit on a window that has not started (its services and audience are relations beside these); the
# publication fields in any status.
EDITABLE_FIELDS = (
    "title",
    "description",
    "starts_at",
    "ends_at",
    "recurrence",
    "notify_before",
    "backup_required",
    "silence_alerts",
    "checks",
    "verify_for",
    "owner",
    *PUBLICATION_FIELDS,
)
RELATIONS = ("services", "notify_users")
# The public view of a window: what the status page, anonymous visitors and requesters (in the API too) are shown of
# a public one, and nothing else (no description, checks, verification, backup or people). Private windows (the
# default) are not shown to them at all.
PUBLIC_FIELDS = ("id", "public_title", "status", "services", "starts_at", "ends_at")

# What the scheduler and the lifecycle write, never people: read-only in the API and in the admin alike.
PROGRESS_FIELDS = (
    "announced_at",
    "backup",
    "started_at",
    "verifying_at",
    "completed_at",
    "cancelled_at",
    "blocked_at",
    "verification_failed_at",
    "verify_until",
    "last_checked_at",
    "blocked_reason",
    "verification",
)
RECORDED_FIELDS = ("series", "status", *PROGRESS_FIELDS, "created_by", "created_at", "updated_at")


class MaintenanceWindow(Versioned):
    """Scheduled, scoped maintenance: announced ahead, backed up first, silenced while it runs, verified after.

    A window with a recurrence rule (RFC 5545 RRULE) is the first occurrence of a series; the scheduler writes
    the later occurrences as windows of their own (`series` points at the first), a few weeks ahead.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        IN_PROGRESS = "in_progress"
        VERIFYING = "verifying"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        BLOCKED = "blocked"
        VERIFICATION_FAILED = "verification_failed"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    services = models.ManyToManyField("itsm.Service", blank=True, related_name="maintenance_windows")
    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField()
    recurrence = models.CharField(max_length=500, blank=True, help_text="An RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=SU")
    series = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="occurrences", editable=False
    )
    # Who is told ahead of time (besides the members of the affected services' teams), and how long before.
    notify_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    notify_before = models.DurationField(
        default=timedelta(hours=1), help_text="How long before the start the announcement goes out."
    )
    backup_required = models.BooleanField(default=True)
    silence_alerts = models.BooleanField(default=True)
    # What must hold afterwards: a list of {"kind": "api_health"}.
    checks = models.JSONField(default=list, blank=True)
    # The checks run on every scheduler tick for this long after the maintenance; every run must pass.
    verify_for = models.DurationField(
        default=default_verify_for, help_text="How long the checks keep running (and must keep passing) afterwards."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    announced_at = models.DateTimeField(null=True, blank=True)
    # Set when the scheduler claims the pre-start gate (the backup), so two runs never take two backups.
    gate_started_at = models.DateTimeField(null=True, blank=True)
    backup = models.ForeignKey("itsm.Backup", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    verifying_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    verification_failed_at = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.TextField(blank=True)
    # The current verification period ends here; the checks last ran at `last_checked_at` (one run per tick).
    verify_until = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    verification = models.JSONField(default=dict, blank=True)
    # The Alertmanager silences created when the window started (expired when it completes or is cancelled).
    silence_ids = models.JSONField(default=list, blank=True)
    incidents = models.ManyToManyField("itsm.Incident", blank=True, related_name="maintenance_windows")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # Shown on the status page and to requesters only once staff mark it public, under its public title.
    public = models.BooleanField(default=False)
    public_title = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["status", "starts_at"], name="idx_maint_status_starts")]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="maint_end_after_start"),
            models.CheckConstraint(condition=~models.Q(title=""), name="maint_title_not_empty"),
            models.UniqueConstraint(fields=["series", "starts_at"], name="uniq_maint_occurrence"),
            models.CheckConstraint(
                condition=models.Q(public=False) | ~models.Q(public_title=""),
                name="maint_public_has_title",
                violation_error_message="A public maintenance window needs a public title.",
            ),
        ]

    def __str__(self) -> str:
        return f"MW-{self.pk} {self.title}"
