from django.db import models

# A drill is written by the drill only: every field is read-only in the API and the admin.
RECORDED_FIELDS = (
    "status",
    "trigger",
    "started_at",
    "finished_at",
    "target_time",
    "rpo_seconds",
    "rto_seconds",
    "backup_label",
    "restored_tables",
    "restored_rows",
    "error",
    "detail",
)


class RecoveryDrill(models.Model):
    """One point-in-time recovery drill: a restore of the pgBackRest repository to a moment into a throw-away
    cluster, with the data at risk (RPO) and the time to a usable cluster (RTO) it measured."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled"
        MANUAL = "manual"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The moment restored to: just after the marker row written before it, just before the one written after.
    target_time = models.DateTimeField(null=True, blank=True)
    # Seconds from the last write until its WAL segment was in the repository: what losing the server would lose.
    rpo_seconds = models.FloatField(null=True, blank=True)
    # Seconds from the start of the restore until the restored cluster answered, promoted, with the data checked.
    rto_seconds = models.FloatField(null=True, blank=True)
    backup_label = models.CharField(max_length=100, blank=True)
    restored_tables = models.PositiveIntegerField(null=True, blank=True)
    restored_rows = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="running") | models.Q(finished_at__isnull=False),
                name="recoverydrill_finished_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"recovery drill #{self.pk} ({self.status})"
