from django.conf import settings
from django.db import models

from itsm.models.versioned import Versioned

# What the ticket service stamps as a ticket moves (its status changes only through transitions): read-only in the
# API and in the admin.
STAMPED_FIELDS = (
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "response_due_at",
    "resolution_due_at",
    "sla_status",
    "sla_policy",
)
RECORDED_FIELDS = ("status", *STAMPED_FIELDS)


class Ticket(Versioned):
    """A service desk request or problem report, worked by agents against an SLA."""

    class Status(models.TextChoices):
        NEW = "new"
        OPEN = "open"
        IN_PROGRESS = "in_progress"
        PENDING = "pending"
        RESOLVED = "resolved"
        CLOSED = "closed"

    class Priority(models.TextChoices):
        CRITICAL = "critical"
        HIGH = "high"
        MEDIUM = "medium"
        LOW = "low"

    class SlaStatus(models.TextChoices):
        OK = "ok"
        AT_RISK = "at_risk"
        BREACHED = "breached"
        PAUSED = "paused"
        MET = "met"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=20, choices=Priority.choices, default=Priority.MEDIUM)
    category = models.CharField(max_length=100, blank=True)
    service = models.ForeignKey("itsm.Service", null=True, blank=True, on_delete=models.PROTECT, related_name="tickets")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requested_tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    # The moment the running clock crosses ITSM_SLA_AT_RISK_PERCENT of a target: the scan compares it with now.
    sla_at_risk_at = models.DateTimeField(null=True, blank=True)
    sla_status = models.CharField(max_length=20, choices=SlaStatus.choices, default=SlaStatus.OK)
    # The policy the due times come from, chosen by service and priority (itsm.services.sla.sla_policy_for). A
    # policy that tickets ran on stays: the report counts by it.
    sla_policy = models.ForeignKey(
        "itsm.SlaPolicy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tickets",
        verbose_name="SLA policy",
    )
    # People told about the ticket besides its requester (the Cc of the mail that opened it), and the closed ticket
    # a reply to which opened this one.
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="watched_tickets")
    follow_up_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups", editable=False
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="idx_ticket_status_created"),
            # The agents' queue: one status and one priority, newest first, without sorting (docs/benchmarks.md).
            models.Index(fields=["status", "priority", "-created_at", "-id"], name="idx_ticket_status_prio_new"),
            models.Index(fields=["requester", "-created_at"], name="idx_ticket_requester_created"),
            models.Index(fields=["assignee", "-created_at"], name="idx_ticket_assignee_created"),
            models.Index(fields=["sla_status", "-created_at"], name="idx_ticket_sla_created"),
            models.Index(
                fields=["sla_at_risk_at"],
                name="idx_ticket_sla_scan",
                condition=models.Q(sla_status__in=["ok", "at_risk"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(title=""), name="ticket_title_not_empty"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class Comment(models.Model):
    """A reply on a ticket. Internal comments are notes between agents, hidden from requesters."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    internal = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="idx_comment_ticket_created")]

    def __str__(self) -> str:
        return f"Comment {self.pk} on ticket {self.ticket_id}"
