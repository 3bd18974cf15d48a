"""notify() writes outbox rows in the caller's transaction: who gets what, the incident's timeline, nothing when
the change rolls back, and nothing lost when the broker is down (the relay picks the rows up)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import time_machine
from django.db import transaction

from itsm.models import Event, JobRun, Notification, NotificationChannel, WebhookEndpoint
from itsm.services.notifications import notification_relay, notifications_delete_old, notify
from itsm.tasks.notifications import deliver_notification, relay_notifications
from tests.factories import ServiceFactory, TeamFactory, make_user
from tests.notifications.conftest import Receiver, make_incident, queued_ids

pytestmark = pytest.mark.django_db

T = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)


class Boom(Exception):
    pass


def destinations(notifications: list[Notification]) -> list[tuple[str, str, str | None]]:
    return sorted((n.channel, n.target, n.recipient.username if n.recipient else None) for n in notifications)


def test_a_user_without_channels_gets_e_mail_at_their_address(agent: Any) -> None:
    notifications = notify(users=[agent], subject="Hello", body="World")
    assert destinations(notifications) == [("email", "alice@example.com", "alice")]
    row = notifications[0]
    assert (row.status, row.attempts, row.urgent, row.subject, row.body) == ("pending", 0, False, "Hello", "World")
    assert row.next_attempt_at == row.created_at


def test_users_get_their_enabled_channels_only(agent: Any, admin: Any) -> None:
    NotificationChannel.objects.create(user=agent, channel="email", target="pager@example.com")
    NotificationChannel.objects.create(user=agent, channel="slack", target="https://hooks.example.net/T1/B2")
    NotificationChannel.objects.create(user=agent, channel="email", target="old@example.com", enabled=False)
    # Every channel disabled: the user chose silence, no fallback to their address.
    NotificationChannel.objects.create(user=admin, channel="email", target="adam@example.com", enabled=False)
    notifications = notify(users=[agent, admin, agent], subject="Hello", body="")
    assert destinations(notifications) == [
        ("email", "pager@example.com", "alice"),
        ("slack", "https://hooks.example.net/T1/B2", "alice"),
    ]


def test_inactive_users_and_users_without_address_get_nothing(db: Any) -> None:
    gone = make_user("gone", "agent")
    gone.is_active = False
    gone.save()
    silent = make_user("silent", "agent")
    silent.email = ""
    silent.save()
    assert notify(users=[gone, silent, None], subject="Hello", body="") == []


def test_incident_notifications_reach_the_endpoints_of_its_teams_and_the_global_ones(agent: Any) -> None:
    platform = TeamFactory.create(name="Platform", slug="platform")
    databases = TeamFactory.create(name="Databases", slug="databases")
    api = ServiceFactory.create(name="API", slug="api", team=platform)
    WebhookEndpoint.objects.create(name="Platform chat", kind="slack", url="https://chat.example.com/p", team=platform)
    WebhookEndpoint.objects.create(
        name="Databases chat", kind="slack", url="https://chat.example.com/d", team=databases
    )
    WebhookEndpoint.objects.create(name="Everything", url="https://tool.example.com/in")
    WebhookEndpoint.objects.create(name="Switched off", url="https://off.example.com/in", enabled=False)
    incident = make_incident(api)

    notifications = notify(users=[agent], subject="[CRITICAL] INC: API down", body="", incident=incident, urgent=True)
    assert destinations(notifications) == [
        ("email", "alice@example.com", "alice"),
        ("slack", "https://chat.example.com/p", None),
        ("webhook", "https://tool.example.com/in", None),
    ]
    assert all(n.urgent and n.incident == incident for n in notifications)
    assert notifications[0].payload["incident"]["services"] == ["api"]
    # Without an incident, endpoints are not involved; and the caller can leave them out.
    assert len(notify(users=[agent], subject="Hi", body="")) == 1
    assert len(notify(users=[agent], subject="Hi", body="", incident=incident, include_endpoints=False)) == 1


def test_each_notification_is_an_event_on_the_incident_without_revealing_webhook_urls(agent: Any) -> None:
    api = ServiceFactory.create(name="API", slug="api")
    WebhookEndpoint.objects.create(name="Ops hook", url="https://hooks.example.com/secret-token-123")
    incident = make_incident(api)
    notifications = notify(users=[agent], subject="Paged", body="", incident=incident, urgent=True)
    events = Event.objects.filter(incident=incident, kind=Event.Kind.NOTIFICATION).order_by("id")
    assert [(e.field, e.new_value) for e in events] == [("notification", str(n.pk)) for n in notifications]
    notes = [e.note for e in events]
    assert notes == ["Urgent e-mail to alice: Paged", "Urgent webhook to endpoint Ops hook: Paged"]
    assert not any("secret-token" in note for note in notes)


def test_a_subject_is_one_line(agent: Any) -> None:
    [notification] = notify(users=[agent], subject="Line one\nBcc: victim@example.com", body="")
    assert notification.subject == "Line one Bcc: victim@example.com"


def test_a_change_that_rolls_back_writes_and_sends_nothing(
    agent: Any, django_capture_on_commit_callbacks: Any, broker: redis.Redis
) -> None:
    incident = make_incident(ServiceFactory.create())

    def change_that_fails() -> None:
        with transaction.atomic():
            notify(users=[agent], subject="Paged", body="", incident=incident, urgent=True)
            raise Boom

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(Boom):
        change_that_fails()
    assert callbacks == []
    assert not Notification.objects.exists()
    assert not Event.objects.filter(kind=Event.Kind.NOTIFICATION).exists()
    assert queued_ids(broker, "critical") == []


def test_delivery_is_queued_only_after_commit_on_the_right_queue(
    agent: Any, django_capture_on_commit_callbacks: Any, broker: redis.Redis
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [page] = notify(users=[agent], subject="Paged", body="", urgent=True)
        [note] = notify(users=[agent], subject="FYI", body="")
        assert queued_ids(broker, "critical") == []
        assert queued_ids(broker, "notifications") == []
    assert len(callbacks) == 2
    for callback in callbacks:
        callback()
    assert queued_ids(broker, "critical") == [page.pk]
    assert queued_ids(broker, "notifications") == [note.pk]


def test_a_broker_outage_after_commit_does_not_reach_the_caller_and_the_relay_delivers_the_row(
    agent: Any,
    django_capture_on_commit_callbacks: Any,
    broker_down: list[str],
    mailoutbox: list[Any],
) -> None:
    with time_machine.travel(T, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            [notification] = notify(users=[agent], subject="Paged", body="", urgent=True)
        assert broker_down == ["itsm.tasks.notifications.deliver_notification"]
        assert Notification.objects.get(pk=notification.pk).status == "pending"
        # The broker is still down when the relay runs: it delivers the row itself.
        assert relay_notifications() == {"due": 1, "queued": 0, "delivered_here": 1}
    assert Notification.objects.get(pk=notification.pk).status == "delivered"
    assert [message.to for message in mailoutbox] == [["alice@example.com"]]
    assert JobRun.objects.get(job="relay_notifications").status == JobRun.Status.SUCCEEDED


def test_the_relay_queues_due_rows_once_the_broker_is_back(agent: Any, broker: redis.Redis) -> None:
    with time_machine.travel(T, tick=False):
        [due] = notify(users=[agent], subject="Paged", body="", urgent=True)
        [later] = notify(users=[agent], subject="FYI", body="")
        [done] = notify(users=[agent], subject="Done", body="")
    Notification.objects.filter(pk=later.pk).update(next_attempt_at=T + timedelta(minutes=5))
    Notification.objects.filter(pk=done.pk).update(status="delivered", next_attempt_at=None)
    with time_machine.travel(T + timedelta(seconds=1), tick=False):
        assert notification_relay() == {"due": 1, "queued": 1, "delivered_here": 0}
    assert queued_ids(broker, "critical") == [due.pk]
    assert queued_ids(broker, "notifications") == []
    with time_machine.travel(T + timedelta(minutes=5), tick=False):
        assert notification_relay() == {"due": 2, "queued": 2, "delivered_here": 0}
    assert queued_ids(broker, "notifications") == [later.pk]


def test_the_relay_runs_once_per_minute_slot(agent: Any, broker: redis.Redis) -> None:
    with time_machine.travel(T + timedelta(seconds=5), tick=False):
        assert relay_notifications() == {"due": 0, "queued": 0, "delivered_here": 0}
        assert relay_notifications() is None
    with time_machine.travel(T + timedelta(seconds=65), tick=False):
        assert relay_notifications() is not None


def test_the_relay_retries_a_failed_attempt_when_its_backoff_ran_out(
    receiver: Callable[..., Receiver], allow_private: None, agent: Any, broker_down: list[str]
) -> None:
    hook = receiver(503)
    NotificationChannel.objects.create(user=agent, channel="webhook", target=hook.url)
    with time_machine.travel(T, tick=False):
        [notification] = notify(users=[agent], subject="Paged", body="")
        assert notification_relay() == {"due": 1, "queued": 0, "delivered_here": 1}
    with time_machine.travel(T + timedelta(seconds=59), tick=False):
        assert notification_relay() == {"due": 0, "queued": 0, "delivered_here": 0}
    with time_machine.travel(T + timedelta(seconds=60), tick=False):
        assert notification_relay() == {"due": 1, "queued": 0, "delivered_here": 1}
    assert Notification.objects.get(pk=notification.pk).status == "delivered"
    assert len(hook.requests) == 2


def test_a_row_whose_worker_died_is_due_again_after_its_lease(agent: Any, mailoutbox: list[Any]) -> None:
    with time_machine.travel(T, tick=False):
        [notification] = notify(users=[agent], subject="Paged", body="")
    # A worker claimed the row and was killed before it recorded anything.
    Notification.objects.filter(pk=notification.pk).update(attempts=1, next_attempt_at=T + timedelta(minutes=5))
    with time_machine.travel(T + timedelta(minutes=4), tick=False):
        assert notification_relay()["due"] == 0
    with time_machine.travel(T + timedelta(minutes=5), tick=False):
        assert deliver_notification(notification.pk) == "delivered"
    assert Notification.objects.get(pk=notification.pk).attempts == 2


def test_delivered_notifications_are_deleted_after_the_retention_period(agent: Any, settings: Any) -> None:
    settings.ITSM_CLEANUP_RETENTION_DAYS = 30
    with time_machine.travel(T, tick=False):
        old_delivered, old_failed, recent = (notify(users=[agent], subject=s, body="")[0] for s in "abc")
    Notification.objects.filter(pk=old_delivered.pk).update(status="delivered", next_attempt_at=None)
    Notification.objects.filter(pk=old_failed.pk).update(status="failed", next_attempt_at=None)
    Notification.objects.filter(pk=recent.pk).update(
        status="delivered", next_attempt_at=None, created_at=T + timedelta(days=2)
    )
    assert notifications_delete_old(now=T + timedelta(days=31)) == 1
    assert sorted(Notification.objects.values_list("pk", flat=True)) == sorted([old_failed.pk, recent.pk])
