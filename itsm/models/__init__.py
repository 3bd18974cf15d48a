from itsm.models.alert_rules import AlertRule
from itsm.models.alerts import Alert
from itsm.models.attachments import Attachment
from itsm.models.backups import Backup
from itsm.models.catalog import Service, Team
from itsm.models.events import Event
from itsm.models.idempotency import IdempotencyKey
from itsm.models.incidents import Incident, Postmortem
from itsm.models.integrations import IntegrationToken
from itsm.models.jobs import JobRun, JobWatch
from itsm.models.logins import LoginThrottle
from itsm.models.mail import InboundMessage, Mailbox, SuppressedAddress, ThreadMessageId
from itsm.models.maintenance import MaintenanceWindow
from itsm.models.notifications import (
    DeliveryAttempt,
    Notification,
    NotificationChannel,
    NotificationPreference,
    TicketNotice,
    WebhookEndpoint,
)
from itsm.models.oncall import Override, Rotation, RotationMember
from itsm.models.pitr import RecoveryDrill
from itsm.models.satisfaction import TicketRating
from itsm.models.sla import BusinessCalendar, Holiday, SlaPolicy, SlaPolicyScope
from itsm.models.tickets import Comment, Ticket

__all__ = [
    "Alert",
    "AlertRule",
    "Attachment",
    "Backup",
    "BusinessCalendar",
    "Comment",
    "DeliveryAttempt",
    "Event",
    "Holiday",
    "IdempotencyKey",
    "InboundMessage",
    "Incident",
    "IntegrationToken",
    "JobRun",
    "JobWatch",
    "LoginThrottle",
    "Mailbox",
    "MaintenanceWindow",
    "Notification",
    "NotificationChannel",
    "NotificationPreference",
    "Override",
    "Postmortem",
    "RecoveryDrill",
    "Rotation",
    "RotationMember",
    "Service",
    "SlaPolicy",
    "SlaPolicyScope",
    "SuppressedAddress",
    "Team",
    "ThreadMessageId",
    "Ticket",
    "TicketNotice",
    "TicketRating",
    "WebhookEndpoint",
]
