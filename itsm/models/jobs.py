from django.conf import settings
from django.db import models
from django.db.models import Q


class JobRun(models.Model):
    """One run of a scheduled job: for one slot of its schedule, or asked for by an admin ("run now").

    The unique slot of scheduled runs makes a duplicated Beat message, or a second Beat, a no-op."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"

    job = models.CharField(max_length=100)
    # The schedule's slot; for a manual run, the moment it was asked for.
    slot = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.SCHEDULE)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    # The output of the run: what it did (counts, sizes), or the error of a failed run.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "slot"], condition=Q(trigger="schedule"), name="uniq_jobrun_job_slot"
            )
        ]
        indexes = [
            # The newest run, and the newest successful run, of each job (the job list and the dead-man switch).
            models.Index(fields=["job", "-id"], name="idx_jobrun_job_latest"),
            models.Index(fields=["job", "status", "-id"], name="idx_jobrun_job_status_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.job} @ {self.slot:%Y-%m-%d %H:%M} ({self.status})"


class JobWatch(models.Model):
    """The dead-man switch's memory of one scheduled job: since when it is watched. A job is judged only on the
    slots that came after it was first seen, so neither a fresh install nor a newly added job pages anyone."""

    job = models.CharField(max_length=100, unique=True)
    first_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.job} (watched since {self.first_seen_at:%Y-%m-%d %H:%M})"
