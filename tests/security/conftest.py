"""A small world with two requesters' private data in it, and the markers that say whose each piece is.

Every private text carries a marker (RITA-..., OSCAR-..., INTERNAL-...), so a test can walk any response body
and tell whether something leaked, whatever the route or the serializer shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from itsm.models import Alert, Backup, Notification, NotificationChannel, RecoveryDrill, Service, Ticket
from itsm.services.attachments import attachment_create
from itsm.services.incidents import (
    incident_create,
    incident_note,
    incident_status_update,
    postmortem_add_action_item,
    postmortem_save,
)
from itsm.services.job_schedule import jobs_all
from itsm.services.maintenance import maintenance_create
from itsm.services.notifications import notify
from itsm.services.satisfaction import ticket_rate
from itsm.services.tickets import comment_create, ticket_transition, ticket_update
from tests.factories import ServiceFactory, make_ticket


@dataclass
class Private:
    """One user's private data: what they own, and the markers only they (and staff, for tickets) may see."""

    ticket: int
    # A resolved ticket with the user's satisfaction rating.
    rated_ticket: int
    channel: int
    notification: int
    attachment: int
    # The attachment of the agents' internal note on this user's ticket: staff only.
    internal_attachment: int
    ticket_markers: list[str]
    own_markers: list[str]
    secret: str


@dataclass
class World:
    rita: Private
    oscar: Private
    internal_markers: list[str]
    # What every signed-in user may read: the public incident's and window's public titles and the incident's public
    # status update.
    public_markers: list[str]
    # Every text of the private incident and window: staff read them where they look, requesters nowhere.
    private_markers: list[str]
    objects: dict[str, list[Any]] = field(default_factory=dict)


def _private(name: str, user: Any, agent: Any) -> Private:
    upper = name.upper()
    ticket = make_ticket(user, title=f"{upper}-TICKET-TITLE", description=f"{upper}-TICKET-DESCRIPTION")
    comment_create(ticket_id=ticket.pk, author=user, body=f"{upper}-PUBLIC-COMMENT")
    note = comment_create(ticket_id=ticket.pk, author=agent, body=f"INTERNAL-{upper}-NOTE", internal=True)
    # A file's name shows in lists and timelines, its bytes only in its download.
    attachment = attachment_create(
        ticket=ticket,
        uploaded_by=user,
        filename=f"{upper}-ATTACHMENT-NAME.txt",
        content_type="text/plain",
        data=f"{upper}-ATTACHMENT-BYTES".encode(),
    )
    internal_attachment = attachment_create(
        ticket=ticket,
        uploaded_by=agent,
        filename=f"INTERNAL-{upper}-ATTACHMENT-NAME.txt",
        content_type="text/plain",
        data=f"INTERNAL-{upper}-ATTACHMENT-BYTES".encode(),
        comment=note,
    )
    # The retitle is an event whose old and new values carry the markers.
    ticket_update(ticket_id=ticket.pk, actor=user, expected_version=None, changes={"title": f"{upper}-RETITLED"})
    rated = make_ticket(user, title=f"{upper}-RATED-TICKET")
    ticket_transition(ticket_id=rated.pk, actor=agent, to="resolved")
    ticket_rate(ticket_id=rated.pk, actor=user, score=4, comment=f"{upper}-RATING-COMMENT")
    channel = NotificationChannel.objects.create(
        user=user, channel=Notification.Channel.WEBHOOK, target=f"https://93.184.216.34/{upper}-CHANNEL-PATH"
    )
    (notification,) = notify(users=[user], subject=f"{upper}-NOTICE-SUBJECT", body=f"{upper}-NOTICE-BODY")
    return Private(
        ticket=ticket.pk,
        rated_ticket=rated.pk,
        channel=channel.pk,
        notification=notification.pk,
        attachment=attachment.pk,
        internal_attachment=internal_attachment.pk,
        ticket_markers=[
            f"{upper}-TICKET-TITLE",
            f"{upper}-TICKET-DESCRIPTION",
            f"{upper}-PUBLIC-COMMENT",
            f"{upper}-RETITLED",
            f"{upper}-ATTACHMENT-NAME",
            f"{upper}-ATTACHMENT-BYTES",
            f"{upper}-RATED-TICKET",
            f"{upper}-RATING-COMMENT",
        ],
        own_markers=[f"{upper}-NOTICE-SUBJECT", f"{upper}-NOTICE-BODY", f"{upper}-CHANNEL-PATH"],
        secret=channel.secret,
    )


@pytest.fixture
def world(requester: Any, other_requester: Any, agent: Any, admin: Any) -> World:
    rita = _private("rita", requester, agent)
    oscar = _private("oscar", other_requester, agent)
    service: Service = ServiceFactory(name="Mail", slug="mail")  # type: ignore[assignment]
    # Rita's ticket is linked to the public incident, which every signed-in user reads in its public view (without
    # its linked tickets). Every other text of it is internal, as is all of the private incident.
    incident = incident_create(
        actor=agent,
        title="INTERNAL-INCIDENT-TITLE mail-relay-2 10.0.0.25:25",
        summary="INTERNAL-INCIDENT-SUMMARY: the alert's description",
        severity="low",
        services=[service],
        commander=agent,
        linked_tickets=Ticket.objects.filter(pk=rita.ticket),
        public=True,
        public_title="PUBLIC-INCIDENT-TITLE: mail is slow",
    )
    private_incident = incident_create(
        actor=agent,
        title="INTERNAL-PRIVATE-INCIDENT-TITLE",
        summary="INTERNAL-PRIVATE-INCIDENT-SUMMARY",
        severity="critical",
        services=[service],
    )
    incident_status_update(
        incident_id=private_incident.pk, actor=agent, body="INTERNAL-PRIVATE-INCIDENT-UPDATE: never published"
    )
    # Requesters read the incident and its public status updates; the rest of its timeline, its post-mortem and
    # its action items are for agents and admins.
    incident_status_update(incident_id=incident.pk, actor=agent, body="PUBLIC-STATUS-UPDATE: mail is slow")
    incident_note(incident_id=incident.pk, actor=agent, body="INTERNAL-INCIDENT-NOTE: the relay is full")
    postmortem_save(incident_id=incident.pk, actor=agent, data={"root_cause": "INTERNAL-POSTMORTEM-ROOT-CAUSE"})
    postmortem_add_action_item(incident_id=incident.pk, actor=agent, title="INTERNAL-ACTION-ITEM")
    now = timezone.now()
    window = maintenance_create(
        actor=agent,
        title="INTERNAL-WINDOW-TITLE",
        description="INTERNAL-WINDOW-DESCRIPTION",
        checks=[{"kind": "promql", "expr": 'up{job="INTERNAL-WINDOW-PROMQL"} == 1'}],
        starts_at=now + timedelta(days=2),
        ends_at=now + timedelta(days=2, hours=1),
        services=[service],
        public=True,
        public_title="PUBLIC-WINDOW-TITLE: mail upgrade",
    )
    private_window = maintenance_create(
        actor=agent,
        title="INTERNAL-PRIVATE-WINDOW-TITLE",
        starts_at=now + timedelta(days=3),
        ends_at=now + timedelta(days=3, hours=1),
    )
    drill = RecoveryDrill.objects.create(started_at=now)
    backup = Backup.objects.create(
        kind=Backup.Kind.DATABASE, tier=Backup.Tier.DAILY, trigger=Backup.Trigger.MANUAL, created_at=now
    )
    alert = Alert.objects.create(
        fingerprint="f00d",
        alertname="MailDown",
        labels={"alertname": "MailDown", "instance": "INTERNAL-ALERT-INSTANCE:9100"},
        annotations={"description": "INTERNAL-ALERT-DESCRIPTION"},
        generator_url="http://prometheus:9090/graph?INTERNAL-ALERT-GENERATOR",
        received_at=now,
        last_received_at=now,
    )
    return World(
        rita=rita,
        oscar=oscar,
        internal_markers=[
            "INTERNAL-RITA-NOTE",
            "INTERNAL-OSCAR-NOTE",
            "INTERNAL-RITA-ATTACHMENT-NAME",
            "INTERNAL-RITA-ATTACHMENT-BYTES",
            "INTERNAL-OSCAR-ATTACHMENT-NAME",
            "INTERNAL-OSCAR-ATTACHMENT-BYTES",
            "INTERNAL-INCIDENT-NOTE",
            "INTERNAL-POSTMORTEM-ROOT-CAUSE",
            "INTERNAL-ACTION-ITEM",
            "INTERNAL-INCIDENT-TITLE",
            "INTERNAL-INCIDENT-SUMMARY",
            "INTERNAL-WINDOW-TITLE",
            "INTERNAL-WINDOW-DESCRIPTION",
            "INTERNAL-WINDOW-PROMQL",
            "INTERNAL-ALERT-INSTANCE",
            "INTERNAL-ALERT-DESCRIPTION",
            "INTERNAL-ALERT-GENERATOR",
        ],
        public_markers=["PUBLIC-STATUS-UPDATE", "PUBLIC-INCIDENT-TITLE", "PUBLIC-WINDOW-TITLE"],
        private_markers=[
            "INTERNAL-PRIVATE-INCIDENT-TITLE",
            "INTERNAL-PRIVATE-INCIDENT-SUMMARY",
            "INTERNAL-PRIVATE-INCIDENT-UPDATE",
            "INTERNAL-PRIVATE-WINDOW-TITLE",
        ],
        objects={
            "ticket": [rita.ticket, oscar.ticket],
            "rated-ticket": [rita.rated_ticket, oscar.rated_ticket],
            "notification": [rita.notification, oscar.notification],
            "notification-channel": [rita.channel, oscar.channel],
            "attachment": [rita.attachment, oscar.attachment, rita.internal_attachment, oscar.internal_attachment],
            "incident": [incident.pk],
            "maintenance-window": [window.pk],
            # Staff read these as any other; requesters get 404, as for what does not exist.
            "private-incident": [private_incident.pk],
            "private-maintenance-window": [private_window.pk],
            "service": [service.pk],
            "team": [service.team_id],
            "backup": [backup.pk],
            "recovery-drill": [drill.pk],
            "alert": [alert.pk],
            "job": [jobs_all()[0].name],
        },
    )


@pytest.fixture
def personas(
    client_for: Callable[[Any], APIClient], requester: Any, other_requester: Any, agent: Any, admin: Any
) -> dict[str, APIClient]:
    return {
        "rita": client_for(requester),
        "oscar": client_for(other_requester),
        "agent": client_for(agent),
        "admin": client_for(admin),
        "anonymous": APIClient(),
    }
