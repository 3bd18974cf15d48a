from django.conf import settings
from django.db import models


class Event(models.Model):
    """One entry of a ticket's, an incident's or a maintenance window's timeline and audit trail: who changed what,
    when, from what to what. Append-only."""

    class Kind(models.TextChoices):
        CREATED = "created"
        CHANGED = "changed"
        TRANSITION = "transition"
        COMMENT = "comment"
        SLA = "sla"
        NOTE = "note"
        ALERT = "alert"
        PAGE = "page"
        ESCALATION = "escalation"
        NOTIFICATION = "notification"
        # A public status update of an incident: shown on the status page, unlike every other kind.
        STATUS_UPDATE = "status_update"
        # The requester's satisfaction rating of a resolved ticket (the score, the comment as the note).
        RATING = "rating"

    ticket = models.ForeignKey("itsm.Ticket", null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    incident = models.ForeignKey(
        "itsm.Incident", null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    window = models.ForeignKey(
        "itsm.MaintenanceWindow", null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    field = models.CharField(max_length=50, blank=True)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="idx_event_ticket_created"),
            models.Index(fields=["incident", "created_at"], name="idx_event_incident_created"),
            models.Index(fields=["window", "created_at"], name="idx_event_window_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.field} {self.old_value!r} -> {self.new_value!r}"
