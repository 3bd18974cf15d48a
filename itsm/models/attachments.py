from django.conf import settings
from django.db import models

# What the attachment service records from the file itself: read-only in the API and in the admin.
RECORDED_FIELDS = ("filename", "content_type", "size", "sha256", "uploaded_by", "created_at")


class Attachment(models.Model):
    """A file on a ticket, or on one of its comments (then it is on the ticket too, and as visible as the comment).
    The bytes live in Django's storage (MEDIA_ROOT or S3) under a random name; the row holds what the API shows."""

    ticket = models.ForeignKey("itsm.Ticket", on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(
        "itsm.Comment", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    # attachments/<ticket id>/<random>.<ext>: never the uploaded name, so names neither collide nor can be guessed.
    file = models.FileField(max_length=255)
    # The name as uploaded, cleaned for display (no path, no control characters); the download offers it.
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="idx_attachment_ticket_created")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(file=""), name="attachment_file_not_empty"),
            models.UniqueConstraint(fields=["file"], name="attachment_file_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} on ticket {self.ticket_id}"
