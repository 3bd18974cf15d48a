"""Delivery against a real webhook receiver on loopback: retries with backoff, each attempt logged, a signature
that verifies with the recipe of docs/api.md, redirects not followed, one send when two workers race."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.db.models import F
from prometheus_client import REGISTRY

from itsm.models import DeliveryAttempt, Notification, NotificationChannel, Service, WebhookEndpoint
from itsm.notifiers import webhook
from itsm.services.notification_delivery import notification_deliver, retry_delay
from itsm.services.notifications import notify
from itsm.tasks.notifications import deliver_notification
from tests.factories import ServiceFactory, TeamFactory
from tests.notifications.conftest import Receiver, make_incident

pytestmark = pytest.mark.django_db

T = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_verify_signature() -> Callable[..., bool]:
    """The verification recipe, executed exactly as docs/api.md prints it."""
    text = API_DOC.read_text()
    section = text[text.index("### Verifying webhook signatures") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/api.md lost its Python verification recipe"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "docs/api.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    verify: Callable[..., bool] = namespace["verify_signature"]
    return verify


def counter(name: str, channel: str) -> float:
    return REGISTRY.get_sample_value(name, {"channel": channel}) or 0.0


@pytest.fixture
def service() -> Service:
    return ServiceFactory.create(name="API", slug="api", team=TeamFactory.create(name="Platform", slug="platform"))


def webhook_endpoint(url: str, **fields: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name=fields.pop("name", "Ops hook"), url=url, **fields)


def notify_endpoints(service: Service, **options: Any) -> Notification:
    """One incident notification, reaching only the admin's endpoints."""
    [notification] = notify(users=[], subject="[CRITICAL] INC: API returns 502", body="It is down.", **options)
    return notification


def test_a_receiver_failing_twice_then_answering_gets_three_logged_attempts_and_a_valid_signature(
    receiver: Callable[..., Receiver], allow_private: None, service: Service
) -> None:
    hook = receiver(500, 500)
    endpoint = webhook_endpoint(hook.url)
    incident = make_incident(service)
    delivered_before = counter("itsm_notifications_delivered_total", "webhook")
    with time_machine.travel(T, tick=False):
        notification = notify_endpoints(service, incident=incident, urgent=True)
        assert deliver_notification(notification.pk) == "pending"
    first = Notification.objects.get(pk=notification.pk)
    assert (first.attempts, first.next_attempt_at) == (1, T + timedelta(seconds=60))
    assert "500" in first.last_error

    # Not due yet: nothing happens, however often a message arrives.
    with time_machine.travel(T + timedelta(seconds=59), tick=False):
        assert deliver_notification(notification.pk) is None
    with time_machine.travel(T + timedelta(seconds=60), tick=False):
        assert deliver_notification(notification.pk) == "pending"
    second = Notification.objects.get(pk=notification.pk)
    assert second.next_attempt_at == T + timedelta(seconds=180)  # the delay doubled
    with time_machine.travel(T + timedelta(seconds=180), tick=False):
        assert deliver_notification(notification.pk) == "delivered"
        final = Notification.objects.get(pk=notification.pk)
        assert final.delivered_at == T + timedelta(seconds=180)
        assert final.next_attempt_at is None
        assert final.last_error == ""

        attempts = list(DeliveryAttempt.objects.filter(notification=notification).order_by("id"))
        assert [(a.success, a.status_code) for a in attempts] == [(False, 500), (False, 500), (True, 200)]
        assert [a.attempted_at for a in attempts] == [T, T + timedelta(seconds=60), T + timedelta(seconds=180)]
        assert len(hook.requests) == 3

        verify_signature = documented_verify_signature()
        request = hook.requests[-1]
        assert request.path == "/hooks/itsm"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-ITSM-Notification"] == str(notification.pk)
        timestamp, signature = request.headers["X-ITSM-Timestamp"], request.headers["X-ITSM-Signature"]
        assert timestamp == str(int((T + timedelta(seconds=180)).timestamp()))
        assert verify_signature(endpoint.secret, timestamp, signature, request.body)
        # A forged body, another secret, or the same request replayed ten minutes later do not verify.
        assert not verify_signature(endpoint.secret, timestamp, signature, request.body.replace(b"502", b"503"))
        assert not verify_signature("another secret", timestamp, signature, request.body)
    with time_machine.travel(T + timedelta(minutes=13), tick=False):
        assert not verify_signature(endpoint.secret, timestamp, signature, request.body)

    document = request.json()
    assert document["notification_id"] == notification.pk
    assert document["subject"] == "[CRITICAL] INC: API returns 502"
    assert document["urgent"] is True
    assert document["incident"] == {
        "id": incident.pk,
        "title": "API returns 502",
        "severity": "critical",
        "status": "detected",
        "services": ["api"],
    }
    assert counter("itsm_notifications_delivered_total", "webhook") == delivered_before + 1


def test_a_redirect_is_not_followed_and_fails_the_notification(
    receiver: Callable[..., Receiver], allow_private: None, service: Service
) -> None:
    target = receiver()  # the place the redirect points to: it must never be asked
    hook = receiver(302, location=target.url)
    webhook_endpoint(hook.url)
    notification = notify_endpoints(service, incident=make_incident(service))
    assert deliver_notification(notification.pk) == "failed"
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert (attempt.success, attempt.status_code) == (False, 302)
    assert "redirect not followed" in attempt.error
    assert target.url in attempt.error
    assert len(hook.requests) == 1
    assert target.requests == []


@pytest.mark.parametrize(("status", "outcome"), [(404, "failed"), (410, "failed"), (429, "pending"), (503, "pending")])
def test_client_errors_fail_at_once_and_throttling_or_server_errors_are_retried(
    receiver: Callable[..., Receiver], allow_private: None, service: Service, status: int, outcome: str
) -> None:
    webhook_endpoint(receiver(status).url)
    notification = notify_endpoints(service, incident=make_incident(service))
    assert deliver_notification(notification.pk) == outcome


def test_the_last_allowed_attempt_marks_the_notification_failed(
    receiver: Callable[..., Receiver], allow_private: None, service: Service, settings: Any
) -> None:
    settings.ITSM_NOTIFICATION_MAX_ATTEMPTS = 3
    webhook_endpoint(receiver(500, 500, 500, 500).url)
    failed_before = counter("itsm_notifications_failed_total", "webhook")
    with time_machine.travel(T, tick=False):
        notification = notify_endpoints(service, incident=make_incident(service))
    moment = T
    for expected in ("pending", "pending", "failed"):
        with time_machine.travel(moment, tick=False):
            assert deliver_notification(notification.pk) == expected
        moment = Notification.objects.get(pk=notification.pk).next_attempt_at or moment
    final = Notification.objects.get(pk=notification.pk)
    assert (final.status, final.attempts, final.next_attempt_at) == ("failed", 3, None)
    assert DeliveryAttempt.objects.filter(notification=notification).count() == 3
    assert counter("itsm_notifications_failed_total", "webhook") == failed_before + 1


def test_backoff_doubles_and_is_capped_at_an_hour(settings: Any) -> None:
    settings.ITSM_NOTIFICATION_RETRY_SECONDS = 60
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 7, 20)] == [60, 120, 240, 480, 3600, 3600]


def test_an_unreachable_receiver_is_a_transient_failure(allow_private: None, service: Service) -> None:
    from tests.system.processes import free_port

    webhook_endpoint(f"http://127.0.0.1:{free_port()}/nobody-listens")
    notification = notify_endpoints(service, incident=make_incident(service))
    assert deliver_notification(notification.pk) == "pending"
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert attempt.status_code is None
    assert "cannot connect" in attempt.error


def test_a_slack_endpoint_gets_a_text_message(
    receiver: Callable[..., Receiver], allow_private: None, service: Service
) -> None:
    hook = receiver()
    webhook_endpoint(hook.url, kind=WebhookEndpoint.Kind.SLACK)
    notification = notify_endpoints(service, incident=make_incident(service), urgent=True)
    assert deliver_notification(notification.pk) == "delivered"
    assert hook.requests[0].json() == {"text": ":rotating_light: *[CRITICAL] INC: API returns 502*\nIt is down."}


def test_e_mail_goes_through_the_django_mail_backend(agent: Any, mailoutbox: list[Any]) -> None:
    [notification] = notify(users=[agent], subject="Paged: INC-1", body="Please look.", urgent=True)
    assert (notification.channel, notification.target) == ("email", "alice@example.com")
    assert deliver_notification(notification.pk) == "delivered"
    [message] = mailoutbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "Paged: INC-1"
    assert message.body == "Please look."
    assert message.extra_headers["X-ITSM-Notification"] == str(notification.pk)
    assert message.extra_headers["X-Priority"] == "1"
    assert DeliveryAttempt.objects.get(notification=notification).success


def test_a_users_own_webhook_is_signed_with_their_channel_secret(
    receiver: Callable[..., Receiver], allow_private: None, agent: Any
) -> None:
    hook = receiver()
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target=hook.url)
    [notification] = notify(users=[agent], subject="Hello", body="")
    assert deliver_notification(notification.pk) == "delivered"
    request = hook.requests[0]
    expected = webhook.signature(channel.secret, request.headers["X-ITSM-Timestamp"], request.body)
    assert request.headers["X-ITSM-Signature"] == expected
    assert request.json()["recipient"] == "alice"


def test_a_webhook_whose_channel_was_removed_fails_for_good(
    receiver: Callable[..., Receiver], allow_private: None, agent: Any
) -> None:
    hook = receiver()
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target=hook.url)
    [notification] = notify(users=[agent], subject="Hello", body="")
    channel.delete()
    assert deliver_notification(notification.pk) == "failed"
    assert "no signing secret" in Notification.objects.get(pk=notification.pk).last_error
    assert hook.requests == []


def test_a_delivered_notification_is_not_sent_again_by_a_duplicate_message(
    receiver: Callable[..., Receiver], allow_private: None, service: Service
) -> None:
    hook = receiver()
    webhook_endpoint(hook.url)
    notification = notify_endpoints(service, incident=make_incident(service))
    assert deliver_notification(notification.pk) == "delivered"
    assert deliver_notification(notification.pk) is None
    assert deliver_notification(999_999_999) is None
    assert len(hook.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_notification_send_it_once(
    receiver: Callable[..., Receiver], allow_private: None
) -> None:
    service = ServiceFactory.create(name="API", slug="api")
    hook = receiver(delay=0.3)
    webhook_endpoint(hook.url)
    notification = notify_endpoints(service, incident=make_incident(service))
    workers = 8
    start = threading.Barrier(workers)
    results: list[Any] = []

    def worker() -> None:
        try:
            start.wait()
            outcome = notification_deliver(notification_id=notification.pk)
            results.append(outcome.status if outcome else None)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results.count("delivered") == 1
    assert results.count(None) == workers - 1
    assert len(hook.requests) == 1
    assert DeliveryAttempt.objects.filter(notification=notification).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_late_result_does_not_overwrite_the_claim_that_replaced_it(
    receiver: Callable[..., Receiver], allow_private: None
) -> None:
    """A worker that outlived its lease: while it waits for the receiver, another worker claims the row. The late
    worker's attempt is logged, but the row stays as the newer claim left it."""
    service = ServiceFactory.create(name="API", slug="api")
    hook = receiver()
    webhook_endpoint(hook.url)
    notification = notify_endpoints(service, incident=make_incident(service))

    def another_claim() -> None:
        Notification.objects.filter(pk=notification.pk).update(attempts=F("attempts") + 1)
        connection.close()

    hook.on_request = another_claim
    assert notification_deliver(notification_id=notification.pk) is not None
    row = Notification.objects.get(pk=notification.pk)
    assert (row.status, row.attempts) == ("pending", 2)
    assert DeliveryAttempt.objects.get(notification=notification).success


def test_a_notification_that_is_not_due_is_not_sent(agent: Any) -> None:
    with time_machine.travel(T, tick=False):
        [notification] = notify(users=[agent], subject="Later", body="")
        Notification.objects.filter(pk=notification.pk).update(next_attempt_at=T + timedelta(minutes=5))
        assert deliver_notification(notification.pk) is None
    assert mail.outbox == []
