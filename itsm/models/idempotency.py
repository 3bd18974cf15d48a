from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` a user sent on a POST, and the response it got, replayed to retries of the same request.

    The row is inserted (in_progress) before the work, in its own transaction, so the unique constraint makes a
    concurrent duplicate wait and then fail; it becomes completed in the work's transaction (itsm.api.idempotency).
    """

    MAX_LENGTH = 255

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=MAX_LENGTH)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=200)
    # SHA-256 of the canonical JSON of the request body: the same key with another body is refused (422).
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    # When the current attempt took the key: an in_progress row whose attempt died long ago may be taken over.
    locked_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
            models.CheckConstraint(
                condition=models.Q(state="in_progress") | models.Q(response_status__isnull=False),
                name="idempotency_key_completed_has_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}] {self.state}"
