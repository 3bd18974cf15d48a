from django.db import models


class Alert(models.Model):
    """One alert from Alertmanager, stored once by fingerprint and attached to the incident of its group."""

    class Status(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"

    fingerprint = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FIRING)
    alertname = models.CharField(max_length=200, blank=True, db_index=True)
    severity = models.CharField(max_length=20, blank=True)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    generator_url = models.URLField(max_length=2000, blank=True)
    group_key = models.CharField(max_length=500, blank=True)
    service = models.ForeignKey("itsm.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    incident = models.ForeignKey(
        "itsm.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    received_at = models.DateTimeField()
    last_received_at = models.DateTimeField()
    # How many deliveries of this alert arrived (Alertmanager repeats firing alerts).
    receive_count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-last_received_at", "-id"]
        indexes = [models.Index(fields=["status", "-last_received_at"], name="idx_alert_status_received")]

    def __str__(self) -> str:
        return f"{self.alertname or self.fingerprint} ({self.status})"
