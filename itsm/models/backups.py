from django.conf import settings
from django.db import models

# A backup is written by the backup run and retention only: every field is read-only in the API and the admin.
RECORDED_FIELDS = (
    "kind",
    "tier",
    "trigger",
    "status",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "size_bytes",
    "sha256",
    "local_path",
    "local_deleted_at",
    "s3_key",
    "s3_storage_class",
    "s3_deleted_at",
    "manifest",
    "verified_at",
    "verified_ok",
    "verification",
    "error",
)


class Backup(models.Model):
    """One backup artifact (database, Redis or media files): where it is stored, its checksum, the manifest taken
    in the same snapshot, and whether a restore of it has been checked. Only a verified backup counts."""

    class Kind(models.TextChoices):
        DATABASE = "database"
        REDIS = "redis"
        MEDIA = "media"

    class Tier(models.TextChoices):
        HOURLY = "hourly"
        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled"
        MANUAL = "manual"
        PRE_MAINTENANCE = "pre_maintenance"
        # Taken by `manage.py upgrade` before a release's migrations; retention never deletes it.
        PRE_UPGRADE = "pre_upgrade"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.DAILY)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker took the backup up: more than one means a crash or a retried upload.
    attempts = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # Relative to BACKUP_DIR, e.g. "database/backup_20250101_021500_database_daily_42.dump".
    local_path = models.CharField(max_length=500, blank=True)
    local_deleted_at = models.DateTimeField(null=True, blank=True)
    s3_key = models.CharField(max_length=1000, blank=True)
    s3_storage_class = models.CharField(max_length=40, blank=True)
    s3_deleted_at = models.DateTimeField(null=True, blank=True)
    # Per-table row counts and content hashes (database), keys per Redis database, or files with their hashes.
    manifest = models.JSONField(default=dict, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # None: not checked yet; True: a restore matched the manifest; False: it did not (or the file is damaged).
    verified_ok = models.BooleanField(null=True, blank=True)
    verification = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["kind", "tier", "-created_at"], name="idx_backup_kind_tier_created"),
            models.Index(
                fields=["kind", "-started_at"],
                name="idx_backup_verified",
                condition=models.Q(status="succeeded", verified_ok=True),
            ),
        ]

    def __str__(self) -> str:
        return f"backup #{self.pk} {self.kind}/{self.tier} ({self.status})"

    @property
    def has_local_copy(self) -> bool:
        return bool(self.local_path) and self.local_deleted_at is None

    @property
    def has_s3_copy(self) -> bool:
        return bool(self.s3_key) and self.s3_deleted_at is None

    def unreadable_copy(self, source: str, *, s3_configured: bool) -> str | None:
        """Why its copy in `source` (local or s3) cannot be read for a verification, or None when it can. Asked
        before a verification starts, so that asking for a copy that is not there refuses instead of recording a
        good backup as failed."""
        if source == "s3":
            if not s3_configured:
                return "S3 is not configured (BACKUP_S3_BUCKET is not set)"
            if not self.has_s3_copy:
                return "it has no S3 copy"
        elif source == "local" and not self.has_local_copy:
            return "it has no local copy"
        return None

    @property
    def is_verified(self) -> bool:
        return self.status == self.Status.SUCCEEDED and self.verified_ok is True
