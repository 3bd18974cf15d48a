"""Every way a record changes leaves an audit row with who did it and from where: the API (a token, checked after
the middleware), the admin, a command, a Celery task, a mail; and never a password hash."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from io import StringIO
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from itsm.audit import ACTOR_HEADER, audit_context, request_source
from itsm.audit import _send_actor as send_actor
from itsm.models import Mailbox, NotificationChannel, Service, Ticket
from itsm.services.mail import mail_receive
from itsm.services.tickets import ticket_transition
from itsm.tasks.sla import recompute_sla, scan_sla
from tests.factories import ServiceFactory, make_ticket

pytestmark = pytest.mark.django_db
User = get_user_model()


def entries_of(instance: Any) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(instance).order_by("id"))


def test_a_ticket_created_through_the_api_is_recorded_with_the_tokens_user_and_source_api(as_agent, agent):
    response = as_agent.post(
        "/api/v1/tickets/", {"title": "VPN drops", "priority": "high"}, format="json", HTTP_X_REQUEST_ID="req-audit-1"
    )
    assert response.status_code == 201, response.content
    (entry,) = entries_of(Ticket.objects.get(pk=response.json()["id"]))
    assert entry.action == LogEntry.Action.CREATE
    assert entry.actor == agent
    assert entry.actor_email == agent.email
    assert entry.additional_data == {"source": "api", "detail": "POST /api/v1/tickets/"}
    assert entry.cid == "req-audit-1"
    assert entry.remote_addr == "127.0.0.1"
    assert entry.changes["title"] == [None, "VPN drops"]
    assert entry.changes["priority"] == [None, "high"]


def test_an_edit_in_the_api_records_the_values_before_and_after(as_agent, agent, requester):
    ticket = make_ticket(requester, title="Printer jams")
    ticket.refresh_from_db()
    response = as_agent.patch(
        f"/api/v1/tickets/{ticket.pk}/", {"priority": "critical"}, format="json", HTTP_IF_MATCH=ticket.etag
    )
    assert response.status_code == 200, response.content
    update = entries_of(ticket)[-1]
    assert update.action == LogEntry.Action.UPDATE
    assert update.actor == agent
    assert update.changes["priority"] == ["medium", "critical"]
    assert "version" not in update.changes


def test_a_change_in_the_admin_is_recorded_with_the_admin_and_source_admin(operator: Client, admin):
    service = ServiceFactory.create(name="VPN", slug="vpn")
    response = operator.post(
        f"/admin/itsm/service/{service.pk}/change/",
        {"name": "VPN gateway", "slug": "vpn", "description": "", "team": service.team_id},
    )
    assert response.status_code == 302, response.content
    update = entries_of(service)[-1]
    assert update.action == LogEntry.Action.UPDATE
    assert update.actor == admin
    assert update.additional_data["source"] == "admin"
    assert update.changes == {"name": ["VPN", "VPN gateway"]}


def test_a_command_is_recorded_as_source_command_without_an_actor(db):
    call_command("add_user", "carol", "--role", "agent", "--email", "carol@example.com", stdout=StringIO())
    carol = User.objects.get(username="carol")
    (created, *_) = entries_of(carol)
    assert created.action == LogEntry.Action.CREATE
    assert created.actor is None
    assert created.additional_data["source"] == "command"
    assert "os_user" in created.additional_data
    assert created.changes["username"] == [None, "carol"]
    # The role is the group membership.
    (role,) = [entry for entry in entries_of(carol) if "groups" in entry.changes]
    assert role.changes["groups"] == {"type": "m2m", "operation": "add", "objects": ["agent"]}


def test_a_scheduled_task_is_recorded_as_source_task_with_its_name(requester):
    ticket = make_ticket(requester)
    Ticket.objects.filter(pk=ticket.pk).update(sla_at_risk_at=timezone.now() - timedelta(minutes=1))
    scan_sla.apply()
    update = entries_of(ticket)[-1]
    assert update.action == LogEntry.Action.UPDATE
    assert update.changes == {"sla_status": ["ok", "at_risk"]}
    assert update.actor is None
    assert update.additional_data == {"source": "task", "detail": "itsm.tasks.sla.scan_sla"}


def test_a_task_sent_on_behalf_of_a_user_is_recorded_with_that_user(admin, requester):
    ticket = make_ticket(requester)
    Ticket.objects.filter(pk=ticket.pk).update(response_due_at=None, resolution_due_at=None)
    headers: dict[str, Any] = {}
    with audit_context(source="api", actor=admin):
        send_actor(headers=headers)
    assert headers[ACTOR_HEADER] == [admin.pk, admin.email]
    recompute_sla.apply(headers=headers)
    update = entries_of(ticket)[-1]
    assert "resolution_due_at" in update.changes
    assert update.actor == admin
    assert update.additional_data == {"source": "task", "detail": "itsm.tasks.sla.recompute_sla"}


def test_the_password_hash_never_reaches_the_audit_trail_only_that_it_changed(as_admin, requester):
    requester.set_password("another-long-passphrase")
    requester.save()
    call_command("add_user", "rita", "--role", "requester", "--password", "yet-another-passphrase", stdout=StringIO())
    requester.refresh_from_db()
    entries = entries_of(requester)
    password_changes = [entry.changes["password"] for entry in entries if "password" in (entry.changes or {})]
    assert password_changes[-2:] == [["(hidden)", "(hidden)"], ["(hidden)", "(hidden)"]]
    hash_parts = set(requester.password.split("$"))
    for entry in LogEntry.objects.all():
        text = str(entry.changes) + str(entry.serialized_data) + entry.changes_text
        assert not any(part and len(part) > 8 and part in text for part in hash_parts), entry.changes
    assert all("last_login" not in (entry.changes or {}) for entry in entries)


def test_secrets_of_webhooks_are_recorded_as_changed_never_their_value(admin):
    channel = NotificationChannel.objects.create(user=admin, channel="webhook", target="https://hooks.example.com/x")
    (entry,) = entries_of(channel)
    assert entry.changes["secret"] == ["None", "(hidden)"]
    assert entry.changes["target"] == ["None", "(hidden)"]
    assert "hooks.example.com" not in str(entry.changes)


def test_models_left_out_write_no_rows(requester):
    make_ticket(requester)
    kinds = set(LogEntry.objects.values_list("content_type__model", flat=True))
    assert "event" not in kinds
    assert "ticketnotice" not in kinds
    assert Service.objects.count() == 0


def test_a_service_that_locked_the_row_gives_the_values_before_without_reading_it_again(agent, requester):
    ticket = make_ticket(requester)
    with CaptureQueriesContext(connection) as queries:
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
    rows = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "itsm_ticket"."id", ') and '"itsm_ticket"."title"' in q["sql"]
    ]
    assert len(rows) == 1, rows  # the lock; django-auditlog alone would read the row once more
    update = entries_of(ticket)[-1]
    assert update.changes["status"] == ["new", "open"]
    assert update.actor is None  # a service called outside any request: a command's
    assert update.additional_data["source"] == "command"


def test_a_mail_that_opens_a_ticket_is_recorded_as_source_mail_with_the_sender(requester):
    mailbox = Mailbox.objects.create(name="support", host="127.0.0.1")
    mail = EmailMessage()
    mail["From"] = f"Rita <{requester.email}>"
    mail["To"] = "support@itsm.example.com"
    mail["Subject"] = "Scanner is offline"
    mail["Message-ID"] = "<scanner-1@example.com>"
    mail.set_content("Since this morning.")
    record = mail_receive(mailbox=mailbox, uidvalidity=1, uid=1, raw=bytes(mail))
    assert record.ticket is not None
    (created,) = entries_of(record.ticket)
    assert created.actor == requester
    assert created.additional_data == {"source": "mail", "detail": "mailbox support"}
    # The mailbox row itself was made by this test, outside any source: a command's.
    assert entries_of(mailbox)[0].additional_data["source"] == "command"


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("/api/v1/tickets/", "api"),
        ("/admin/itsm/ticket/1/change/", "admin"),
        ("/portal/tickets/new/", "portal"),
        ("/oidc/callback/", "web"),
        ("/apiary/", "web"),
    ],
)
def test_an_http_requests_source_is_the_site_of_its_url(path, source):
    assert request_source(path) == source
