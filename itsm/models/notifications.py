from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from itsm.models.versioned import Versioned


def generate_secret() -> str:
    """A fresh HMAC signing secret (256 bits)."""
    return secrets.token_urlsafe(32)


# Where a notification's delivery stands, as the log shows it in the API and the admin.
DELIVERY_FIELDS = ("status", "attempts", "next_attempt_at", "last_error", "created_at", "delivered_at")


class Notification(models.Model):
    """One message to one destination: the outbox row written in the same transaction as the change it reports,
    then delivered by a worker with bounded retries. Its attempts are logged as DeliveryAttempt rows."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"
        SLACK = "slack"

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    channel = models.CharField(max_length=20, choices=Channel.choices)
    # An e-mail address or a URL, as it was when the row was written (redelivery refreshes it from its source).
    target = models.CharField(max_length=500)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    # Where the target and the signing secret come from: an admin's endpoint, a user's channel, or neither (the
    # default e-mail to the recipient's address).
    endpoint = models.ForeignKey(
        "itsm.WebhookEndpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    user_channel = models.ForeignKey(
        "itsm.NotificationChannel", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    # An e-mail's HTML alternative, and the headers that thread it (Message-ID, In-Reply-To, References).
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    incident = models.ForeignKey(
        "itsm.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    ticket = models.ForeignKey(
        "itsm.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    urgent = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a pending row is due. A worker that claims the row pushes it forward by a lease, so a row whose worker
    # died becomes due again; delivered and failed rows have none.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="idx_notification_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["status", "-created_at"], name="idx_notification_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="pending") | models.Q(next_attempt_at__isnull=False),
                name="notification_pending_has_due_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk} {self.subject[:60]} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try to deliver a notification: when, whether it worked, the HTTP status or error, how long it took."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    attempted_at = models.DateTimeField()
    success = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        outcome = "ok" if self.success else "failed"
        return f"attempt on #{self.notification_id} at {self.attempted_at:%Y-%m-%d %H:%M:%S} ({outcome})"


class NotificationChannel(Versioned):
    """A way one user wants to be told: an e-mail address, a signed webhook or a Slack-compatible webhook.
    A user with no channels at all gets e-mail at their account's address."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_channels")
    channel = models.CharField(max_length=20, choices=Notification.Channel.choices)
    target = models.CharField(max_length=500)
    enabled = models.BooleanField(default=True)
    # Signs the user's own webhooks (X-ITSM-Signature); unused for e-mail and Slack.
    secret = models.CharField(max_length=100, default=generate_secret)
    # After a rotation, the former secret also signs deliveries until it expires (services/webhook_secrets.py).
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "channel", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "channel", "target"], name="uniq_notification_channel"),
            models.CheckConstraint(
                condition=models.Q(channel__in=["email", "webhook", "slack"]), name="notification_channel_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.channel}"


class WebhookEndpoint(models.Model):
    """A webhook an admin configured (a chat channel, an incident tool): it receives every notification about
    incidents of its team's services, or of all incidents when it has no team."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        SLACK = "slack"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WEBHOOK)
    url = models.CharField(max_length=500, help_text="http(s) only; private and loopback addresses are refused.")
    secret = models.CharField(
        max_length=100, default=generate_secret, help_text="Signs the body (X-ITSM-Signature); give it to the receiver."
    )
    previous_secret = models.CharField(
        max_length=100, blank=True, default="", help_text="The secret before the last rotation, until it expires."
    )
    previous_secret_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Until then each delivery carries a signature with the former secret too."
    )
    enabled = models.BooleanField(default=True)
    team = models.ForeignKey(
        "itsm.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        help_text="Only incidents of this team's services; empty for all incidents.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NotificationPreference(models.Model):
    """What a user chooses to hear about tickets by e-mail (itsm.services.ticket_notifications.EVENTS); a user
    without a row gets the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    email = models.BooleanField(default=True, help_text="Off: no ticket e-mail at all.")
    # The events switched off; any other event follows its default.
    off = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Ticket e-mail of user {self.user_id}"


class TicketNotice(models.Model):
    """Something about a ticket that people may hear of (itsm.services.ticket_notifications.EVENTS), written in the
    same transaction as the change for one INSERT; a worker expands it into the e-mails (who, their preferences, the
    thread) off the request's path, once: `expanded_at` is set in the transaction that writes them."""

    ticket = models.ForeignKey("itsm.Ticket", on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.ForeignKey("itsm.Comment", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField()
    expanded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="idx_ticket_notice_pending", condition=models.Q(expanded_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"{self.event} of ticket {self.ticket_id}"
