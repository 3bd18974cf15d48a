from django.conf import settings
from django.db import models

from itsm.lifecycles import INCIDENT_CLOSED_STATUSES
from itsm.models.versioned import Versioned

# What people edit on an incident (besides its status, moved by transitions), and its relations beside those.
EDITABLE_FIELDS = ("title", "summary", "severity", "commander", "public", "public_title")
RELATIONS = ("services", "linked_tickets")
# The time each state of the lifecycle was entered, and the response clock: stamped by the services.
STATE_TIMES = ("acknowledged_at", "diagnosing_at", "mitigating_at", "resolved_at", "reviewed_at")
RESPONSE_FIELDS = ("response_due_at", "response_target_missed", "escalation_level")
# What people never write: read-only in the API and the admin.
RECORDED_FIELDS = ("status", "source", *STATE_TIMES, *RESPONSE_FIELDS, "created_by", "updated_at")
# The public view of an incident: what the status page, anonymous visitors and requesters (in the API too) are
# shown of a public one, and nothing else. The title is `public_title`; its public status updates are Events of
# kind status_update. Private incidents (the default) are not shown to them at all.
PUBLIC_FIELDS = ("id", "public_title", "severity", "status", "services", "detected_at", "resolved_at", "updated_at")
# The sections of a post-mortem.
POSTMORTEM_FIELDS = ("summary", "impact", "root_cause", "trigger", "detection", "resolution", "lessons")


class Incident(Versioned):
    """An operational outage or degradation, answered by the on-call team through a fixed lifecycle."""

    class Severity(models.TextChoices):
        CRITICAL = "critical"
        HIGH = "high"
        MEDIUM = "medium"
        LOW = "low"

    class Status(models.TextChoices):
        DETECTED = "detected"
        ACKNOWLEDGED = "acknowledged"
        DIAGNOSING = "diagnosing"
        MITIGATING = "mitigating"
        RESOLVED = "resolved"
        REVIEWED = "reviewed"

    class Source(models.TextChoices):
        MANUAL = "manual"
        ALERTMANAGER = "alertmanager"
        RULE = "rule"

    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=20, choices=Severity.choices, default=Severity.HIGH)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DETECTED)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    services = models.ManyToManyField("itsm.Service", blank=True, related_name="incidents")
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="commanded_incidents"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    linked_tickets = models.ManyToManyField("itsm.Ticket", blank=True, related_name="incidents")
    detected_at = models.DateTimeField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    diagnosing_at = models.DateTimeField(null=True, blank=True)
    mitigating_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    response_due_at = models.DateTimeField()
    # Set once the due time passes unacknowledged (or the acknowledgement came late); never cleared.
    response_target_missed = models.BooleanField(default=False)
    # Alert grouping: Alertmanager's groupKey (or alertname + service). Unique among open incidents, so
    # concurrent deliveries of one group collapse into one incident.
    group_key = models.CharField(max_length=500, null=True, blank=True)
    # Escalation is a timer scanned by Beat: the next moment the page moves one step up, and that step.
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()
    # Shown on the status page and to requesters only once staff mark it public, under its public title: the title
    # from Alertmanager names instances and addresses.
    public = models.BooleanField(default=False)
    public_title = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-detected_at"], name="idx_incident_status_detected"),
            models.Index(fields=["severity", "-detected_at"], name="idx_incident_severity_detected"),
            models.Index(
                fields=["next_escalation_at"],
                name="idx_incident_escalation",
                condition=models.Q(next_escalation_at__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["group_key"],
                condition=models.Q(group_key__isnull=False) & ~models.Q(status__in=sorted(INCIDENT_CLOSED_STATUSES)),
                name="uniq_open_incident_per_alert_group",
            ),
            models.CheckConstraint(condition=~models.Q(title=""), name="incident_title_not_empty"),
            models.CheckConstraint(
                condition=models.Q(public=False) | ~models.Q(public_title=""),
                name="incident_public_has_title",
                violation_error_message="A public incident needs a public title.",
            ),
        ]

    def __str__(self) -> str:
        return f"INC-{self.pk} {self.title}"


class Postmortem(Versioned):
    """The review of an incident: what happened, why, and what we change. Final ones are required to close
    critical and high incidents."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        FINAL = "final"

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    summary = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    trigger = models.TextField(blank=True)
    detection = models.TextField(blank=True)
    resolution = models.TextField(blank=True)
    lessons = models.TextField(blank=True)
    action_items = models.ManyToManyField("itsm.Ticket", blank=True, related_name="postmortems")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField()
    finalized_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "post-mortem"

    def __str__(self) -> str:
        return f"Post-mortem of INC-{self.incident_id} ({self.status})"
