"""The notification log and redelivery over the API, and each user's own channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from itsm.models import DeliveryAttempt, Event, Notification, NotificationChannel, WebhookEndpoint
from itsm.services.notifications import notify
from itsm.tasks.notifications import deliver_notification
from tests.etags import if_match
from tests.factories import ServiceFactory
from tests.notifications.conftest import Receiver, make_incident, queued_ids

pytestmark = pytest.mark.django_db

NOTIFICATIONS = "/api/v1/notifications/"
CHANNELS = "/api/v1/notification-channels/"


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


# --- the log -------------------------------------------------------------------------------------------------------


def test_agents_see_every_notification_and_others_only_their_own(
    as_requester: APIClient, as_agent: APIClient, as_admin: APIClient, requester: Any, other_requester: Any
) -> None:
    [mine] = notify(users=[requester], subject="Your ticket", body="")
    [theirs] = notify(users=[other_requester], subject="Their ticket", body="")
    assert ids(as_requester.get(NOTIFICATIONS)) == [mine.pk]
    assert ids(as_agent.get(NOTIFICATIONS)) == [mine.pk, theirs.pk]
    assert ids(as_admin.get(NOTIFICATIONS)) == [mine.pk, theirs.pk]
    assert as_requester.get(f"{NOTIFICATIONS}{theirs.pk}/").status_code == 404
    assert as_requester.get(f"{NOTIFICATIONS}{mine.pk}/").status_code == 200


def test_anonymous_users_are_refused(anonymous: APIClient) -> None:
    assert anonymous.get(NOTIFICATIONS).status_code == 401
    assert anonymous.get(CHANNELS).status_code == 401


def test_the_log_filters_by_status_channel_and_incident(as_agent: APIClient, agent: Any, admin: Any) -> None:
    NotificationChannel.objects.create(user=admin, channel="slack", target="https://chat.example.com/services/T/B/X")
    incident = make_incident(ServiceFactory.create())
    [email] = notify(users=[agent], subject="One", body="", incident=incident)
    [slack] = notify(users=[admin], subject="Two", body="")
    Notification.objects.filter(pk=slack.pk).update(status="failed", next_attempt_at=None)
    assert ids(as_agent.get(NOTIFICATIONS, {"status": "failed"})) == [slack.pk]
    assert ids(as_agent.get(NOTIFICATIONS, {"status": ["failed", "pending"]})) == [email.pk, slack.pk]
    assert ids(as_agent.get(NOTIFICATIONS, {"channel": "email"})) == [email.pk]
    assert ids(as_agent.get(NOTIFICATIONS, {"incident": incident.pk})) == [email.pk]
    assert ids(as_agent.get(NOTIFICATIONS, {"recipient": admin.pk})) == [slack.pk]
    assert as_agent.get(NOTIFICATIONS, {"status": "lost"}).status_code == 400
    assert as_agent.get(NOTIFICATIONS, {"incident": "x"}).status_code == 400


def test_webhook_urls_are_shown_without_their_path(as_admin: APIClient, admin: Any) -> None:
    NotificationChannel.objects.create(user=admin, channel="slack", target="https://hooks.slack.com/services/T0/B0/XYZ")
    [notification] = notify(users=[admin], subject="Hi", body="")
    row = as_admin.get(f"{NOTIFICATIONS}{notification.pk}/").json()
    assert row["target"] == "https://hooks.slack.com/…"
    assert "XYZ" not in str(row)


def test_the_log_costs_a_fixed_number_of_queries(
    as_agent: APIClient, agent: Any, mailoutbox: list[Any], django_assert_max_num_queries: Any
) -> None:
    incident = make_incident(ServiceFactory.create())
    for number in range(20):
        [notification] = notify(users=[agent], subject=f"Note {number}", body="", incident=incident)
        deliver_notification(notification.pk)
    as_agent.get(NOTIFICATIONS)
    # Token, its user, the role, the page, the attempts of the page.
    with django_assert_max_num_queries(5):
        response = as_agent.get(NOTIFICATIONS, {"page_size": 50})
    rows = response.json()["results"]
    assert len(rows) == 20
    assert all(len(row["delivery_attempts"]) == 1 for row in rows)


# --- redelivery ----------------------------------------------------------------------------------------------------


def test_an_agent_redelivers_a_failed_webhook_to_its_corrected_url(
    as_agent: APIClient,
    receiver: Callable[..., Receiver],
    allow_private: None,
    django_capture_on_commit_callbacks: Any,
    broker: redis.Redis,
) -> None:
    wrong, right = receiver(404), receiver()
    endpoint = WebhookEndpoint.objects.create(name="Ops", url=wrong.url)
    incident = make_incident(ServiceFactory.create())
    [notification] = notify(users=[], subject="Paged", body="", incident=incident)
    assert deliver_notification(notification.pk) == "failed"
    endpoint.url = right.url
    endpoint.save()

    with django_capture_on_commit_callbacks(execute=True):
        response = as_agent.post(f"{NOTIFICATIONS}{notification.pk}/redeliver/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["attempts"], body["last_error"]) == ("pending", 0, "")
    assert queued_ids(broker) == [notification.pk]

    assert deliver_notification(notification.pk) == "delivered"
    assert len(right.requests) == 1
    attempts = DeliveryAttempt.objects.filter(notification=notification).order_by("id")
    assert [(a.success, a.status_code) for a in attempts] == [(False, 404), (True, 200)]
    redelivery = Event.objects.get(incident=incident, field="redelivery")
    assert redelivery.actor is not None
    assert redelivery.actor.username == "alice"


def test_a_delivered_notification_can_be_sent_again(as_admin: APIClient, agent: Any, mailoutbox: list[Any]) -> None:
    [notification] = notify(users=[agent], subject="Paged", body="")
    deliver_notification(notification.pk)
    assert as_admin.post(f"{NOTIFICATIONS}{notification.pk}/redeliver/").status_code == 202
    assert deliver_notification(notification.pk) == "delivered"
    assert len(mailoutbox) == 2
    assert DeliveryAttempt.objects.filter(notification=notification).count() == 2


def test_a_pending_notification_cannot_be_redelivered(as_agent: APIClient, agent: Any) -> None:
    [notification] = notify(users=[agent], subject="Paged", body="")
    response = as_agent.post(f"{NOTIFICATIONS}{notification.pk}/redeliver/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_ready"


def test_requesters_cannot_redeliver(
    as_requester: APIClient, requester: Any, other_requester: Any, mailoutbox: list[Any]
) -> None:
    [mine] = notify(users=[requester], subject="Yours", body="")
    [theirs] = notify(users=[other_requester], subject="Theirs", body="")
    for notification in (mine, theirs):
        deliver_notification(notification.pk)
    assert as_requester.post(f"{NOTIFICATIONS}{mine.pk}/redeliver/").status_code == 403
    assert as_requester.post(f"{NOTIFICATIONS}{theirs.pk}/redeliver/").status_code == 404
    assert Notification.objects.get(pk=mine.pk).status == "delivered"


def test_the_log_is_read_only(as_admin: APIClient, agent: Any) -> None:
    [notification] = notify(users=[agent], subject="Paged", body="")
    assert as_admin.post(NOTIFICATIONS, {"subject": "x"}, format="json").status_code == 405
    assert as_admin.delete(f"{NOTIFICATIONS}{notification.pk}/").status_code == 405


# --- channels ------------------------------------------------------------------------------------------------------


def test_a_user_adds_lists_changes_and_removes_their_own_channels(
    as_requester: APIClient, requester: Any, receiver: Callable[..., Receiver], allow_private: None
) -> None:
    hook = receiver()
    created = as_requester.post(CHANNELS, {"channel": "webhook", "target": hook.url}, format="json")
    assert created.status_code == 201, created.content
    channel = created.json()
    assert channel["enabled"] is True
    assert len(channel["secret"]) >= 40
    email = as_requester.post(CHANNELS, {"channel": "email", "target": " pager@example.com "}, format="json").json()
    assert email["target"] == "pager@example.com"
    assert email["secret"] is None

    listing = as_requester.get(CHANNELS).json()["results"]
    assert [row["channel"] for row in listing] == ["webhook", "email"]
    changed = as_requester.patch(
        f"{CHANNELS}{email['id']}/", {"enabled": False}, format="json", **if_match(NotificationChannel, email["id"])
    )
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False
    assert as_requester.delete(f"{CHANNELS}{channel['id']}/").status_code == 204
    assert list(NotificationChannel.objects.filter(user=requester).values_list("channel", "enabled")) == [
        ("email", False)
    ]


def test_nobody_sees_or_changes_another_users_channels(
    as_requester: APIClient, as_admin: APIClient, other_requester: Any
) -> None:
    theirs = NotificationChannel.objects.create(user=other_requester, channel="email", target="o@example.com")
    for client in (as_requester, as_admin):
        assert client.get(CHANNELS).json()["results"] == []
        assert client.get(f"{CHANNELS}{theirs.pk}/").status_code == 404
        assert client.patch(f"{CHANNELS}{theirs.pk}/", {"enabled": False}, format="json").status_code == 404
        assert client.delete(f"{CHANNELS}{theirs.pk}/").status_code == 404
    assert NotificationChannel.objects.get(pk=theirs.pk).enabled


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"channel": "email", "target": "not an address"}, "target"),
        ({"channel": "email", "target": ""}, "target"),
        ({"channel": "sms", "target": "+4912345"}, "channel"),
        ({"channel": "webhook", "target": "http://10.0.0.1/hook"}, "target"),
        ({"channel": "slack"}, "target"),
        ({"target": "a@example.com"}, "channel"),
        ({"channel": "email", "target": "x" * 501}, "target"),
    ],
)
def test_invalid_channels_are_a_400_naming_the_field(as_requester: APIClient, data: dict[str, Any], field: str) -> None:
    response = as_requester.post(CHANNELS, data, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_channel_cannot_be_added_twice(as_requester: APIClient) -> None:
    data = {"channel": "email", "target": "pager@example.com"}
    assert as_requester.post(CHANNELS, data, format="json").status_code == 201
    response = as_requester.post(CHANNELS, data, format="json")
    assert response.status_code == 400
    assert response.json() == {"target": ["You already have this channel."]}


def test_changing_a_channel_to_a_webhook_checks_the_url(as_requester: APIClient) -> None:
    channel = as_requester.post(CHANNELS, {"channel": "email", "target": "pager@example.com"}, format="json").json()
    response = as_requester.patch(
        f"{CHANNELS}{channel['id']}/",
        {"channel": "webhook"},
        format="json",
        **if_match(NotificationChannel, channel["id"]),
    )
    assert response.status_code == 400
    assert "target" in response.json()


def test_the_channel_list_costs_a_fixed_number_of_queries(
    as_requester: APIClient, requester: Any, django_assert_max_num_queries: Any
) -> None:
    for number in range(15):
        NotificationChannel.objects.create(user=requester, channel="email", target=f"r{number}@example.com")
    as_requester.get(CHANNELS)
    with django_assert_max_num_queries(3):
        assert len(as_requester.get(CHANNELS, {"page_size": 50}).json()["results"]) == 15
