"""A webhook's signing secret rotates without a refused delivery: for the rotation window each delivery carries a
signature made with the new secret and one made with the former, so a receiver holding either accepts it; after
the window only the new one signs. Rotated through the API (by the channel's owner), the admin and a command."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command

from itsm.models import NotificationChannel, WebhookEndpoint
from itsm.notifiers import webhook
from itsm.services.notifications import notify
from itsm.tasks.notifications import deliver_notification
from tests.etags import if_match
from tests.notifications.conftest import Received, Receiver
from tests.notifications.test_delivery import documented_verify_signature

pytestmark = pytest.mark.django_db

T = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)


def delivered(user: Any, hook: Receiver) -> Received:
    """Notify `user`, deliver the notification to their webhook and return what the receiver got."""
    [notification] = notify(users=[user], subject="Hello", body="")
    assert deliver_notification(notification.pk) == "delivered"
    return hook.requests[-1]


def accepted_by(secret: str, request: Received) -> bool:
    """The receiver's check, with the platform's helper and with the recipe docs/api.md prints."""
    timestamp, header = request.headers["X-ITSM-Timestamp"], request.headers["X-ITSM-Signature"]
    helper = webhook.verify(secret, timestamp, header, request.body)
    recipe = documented_verify_signature()(secret, timestamp, header, request.body)
    assert helper == recipe
    return helper


def test_during_the_window_deliveries_carry_both_signatures_and_after_it_only_the_new_one(
    receiver: Callable[..., Receiver], allow_private: None, agent: Any, client_for: Any
) -> None:
    hook = receiver()
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target=hook.url)
    old = channel.secret
    with time_machine.travel(T, tick=False):
        response = client_for(agent).post(
            f"/api/v1/notification-channels/{channel.pk}/rotate-secret/",
            {"window_hours": 2},
            format="json",
            **if_match(channel),
        )
        assert response.status_code == 200, response.json()
        new = response.json()["secret"]
        assert new != old
        assert len(new) >= 40
        assert response.json()["previous_secret_expires_at"] == "2026-03-28T12:00:00Z"

    with time_machine.travel(T + timedelta(hours=1, minutes=59), tick=False):
        during = delivered(agent, hook)
        assert during.headers["X-ITSM-Signature"].count("sha256=") == 2
        timestamp = during.headers["X-ITSM-Timestamp"]
        assert timestamp == str(int((T + timedelta(hours=1, minutes=59)).timestamp()))
        assert during.headers["X-ITSM-Signature"] == ",".join(
            [webhook.signature(new, timestamp, during.body), webhook.signature(old, timestamp, during.body)]
        )
        assert accepted_by(old, during)
        assert accepted_by(new, during)
        assert not accepted_by("some-other-secret", during)

    with time_machine.travel(T + timedelta(hours=2), tick=False):
        after = delivered(agent, hook)
        assert after.headers["X-ITSM-Signature"].count("sha256=") == 1
        assert accepted_by(new, after)
        assert not accepted_by(old, after)


def test_a_rotation_with_no_window_stops_the_former_secret_at_once(
    receiver: Callable[..., Receiver], allow_private: None, agent: Any, client_for: Any
) -> None:
    hook = receiver()
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target=hook.url)
    old = channel.secret
    url = f"/api/v1/notification-channels/{channel.pk}/rotate-secret/"
    response = client_for(agent).post(url, {"window_hours": 0}, format="json", **if_match(channel))
    assert response.status_code == 200
    assert response.json()["previous_secret_expires_at"] is None
    request = delivered(agent, hook)
    assert accepted_by(response.json()["secret"], request)
    assert not accepted_by(old, request)


def test_rotating_twice_in_one_window_keeps_only_the_secret_just_replaced(agent: Any, client_for: Any) -> None:
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target="https://hooks.example.com/a")
    first = channel.secret
    url = f"/api/v1/notification-channels/{channel.pk}/rotate-secret/"
    second = client_for(agent).post(url, {}, format="json", **if_match(channel)).json()["secret"]
    third = client_for(agent).post(url, {}, format="json", **if_match(channel)).json()["secret"]
    channel.refresh_from_db()
    assert (channel.secret, channel.previous_secret) == (third, second)
    assert first not in (channel.secret, channel.previous_secret)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window_hours": -1}, "window_hours"),
        ({"window_hours": 721}, "window_hours"),
        ({"window_hours": "soon"}, "window_hours"),
        ({"window_hours": None}, "window_hours"),
    ],
)
def test_a_bad_window_is_a_400_naming_the_field_and_the_secret_stays(
    agent: Any, client_for: Any, body: dict[str, Any], field: str
) -> None:
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target="https://hooks.example.com/a")
    response = client_for(agent).post(
        f"/api/v1/notification-channels/{channel.pk}/rotate-secret/", body, format="json", **if_match(channel)
    )
    assert response.status_code == 400
    assert field in response.json()
    assert NotificationChannel.objects.get(pk=channel.pk).secret == channel.secret


def test_an_e_mail_channel_has_no_secret_to_rotate(agent: Any, client_for: Any) -> None:
    channel = NotificationChannel.objects.create(user=agent, channel="email", target="alice@example.com")
    response = client_for(agent).post(
        f"/api/v1/notification-channels/{channel.pk}/rotate-secret/", {}, **if_match(channel)
    )
    assert response.status_code == 409
    assert "no secret to rotate" in response.json()["detail"]


def test_no_one_rotates_another_users_channel_and_the_anonymous_are_asked_to_sign_in(
    agent: Any, admin: Any, client_for: Any, anonymous: Any
) -> None:
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target="https://hooks.example.com/a")
    url = f"/api/v1/notification-channels/{channel.pk}/rotate-secret/"
    assert client_for(admin).post(url, {}).status_code == 404  # admins use the admin site or the command
    assert anonymous.post(url, {}).status_code == 401
    assert NotificationChannel.objects.get(pk=channel.pk).secret == channel.secret


def test_the_command_rotates_a_channel_or_an_endpoint_and_prints_the_new_secret(agent: Any) -> None:
    channel = NotificationChannel.objects.create(user=agent, channel="webhook", target="https://hooks.example.com/a")
    endpoint = WebhookEndpoint.objects.create(name="Ops hook", url="https://hooks.example.com/ops")
    out, err = StringIO(), StringIO()
    with time_machine.travel(T, tick=False):
        call_command("rotate_webhook_secret", str(channel.pk), stdout=out, stderr=err)
        call_command("rotate_webhook_secret", "--endpoint", "Ops hook", "--window-hours", "48", stdout=out, stderr=err)
    channel_secret, endpoint_secret = out.getvalue().split()
    channel.refresh_from_db()
    endpoint.refresh_from_db()
    assert (channel.secret, endpoint.secret) == (channel_secret, endpoint_secret)
    assert channel.previous_secret_expires_at == T + timedelta(hours=24)
    assert endpoint.previous_secret_expires_at == T + timedelta(hours=48)
    assert "until 2026-03-30T10:00:00+00:00" in err.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Name one webhook"),
        (["999999"], "No notification channel has the id 999999"),
        (["--endpoint", "Nowhere"], "No webhook endpoint is named 'Nowhere'"),
        (["--endpoint", "Chat"], "is a Slack webhook"),
        (["--endpoint", "Ops hook", "--window-hours", "-3"], "between 0 and 720 hours"),
    ],
)
def test_the_command_refuses_what_it_cannot_rotate_with_a_clear_message(args: list[str], message: str) -> None:
    WebhookEndpoint.objects.create(name="Ops hook", url="https://hooks.example.com/ops")
    WebhookEndpoint.objects.create(name="Chat", kind="slack", url="https://hooks.example.com/chat")
    with pytest.raises(CommandError, match=message):
        call_command("rotate_webhook_secret", *args, stdout=StringIO(), stderr=StringIO())


def test_the_admin_action_rotates_the_selected_endpoints(operator: Any) -> None:
    endpoint = WebhookEndpoint.objects.create(name="Ops hook", url="https://hooks.example.com/ops")
    chat = WebhookEndpoint.objects.create(name="Chat", kind="slack", url="https://hooks.example.com/chat")
    response = operator.post(
        "/admin/itsm/webhookendpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk, chat.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 signing secret(s) rotated" in response.content.decode()
    rotated = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (rotated.previous_secret, rotated.secret != endpoint.secret) == (endpoint.secret, True)
    assert WebhookEndpoint.objects.get(pk=chat.pk).secret == chat.secret  # Slack webhooks are not signed


def test_the_helper_refuses_an_old_timestamp_a_garbled_header_and_an_empty_secret() -> None:
    body, timestamp = b'{"a":1}', "1774692000"
    header = webhook.signature_header("new", "old", timestamp, body)
    assert webhook.verify(["old"], timestamp, header, body, now=1774692000 + 300)
    assert not webhook.verify("old", timestamp, header, body, now=1774692000 + 301)
    assert not webhook.verify("old", "yesterday", header, body, now=1774692000)
    assert not webhook.verify("old", timestamp, header.replace(",", ";"), body, now=1774692000)
    assert not webhook.verify("", timestamp, header, body, now=1774692000)
    assert not webhook.verify("new", timestamp, header, body + b" ", now=1774692000)


def test_the_admin_action_rotates_users_webhook_channels_and_passes_over_their_e_mail(operator: Any, agent: Any):
    hook = NotificationChannel.objects.create(user=agent, channel="webhook", target="https://hooks.example.com/a")
    mail = NotificationChannel.objects.create(user=agent, channel="email", target="alice@example.com")
    response = operator.post(
        "/admin/itsm/notificationchannel/",
        {"action": "rotate_secret", "_selected_action": [hook.pk, mail.pk]},
        follow=True,
    )
    assert "1 signing secret(s) rotated" in response.content.decode()
    assert NotificationChannel.objects.get(pk=hook.pk).previous_secret == hook.secret
    assert NotificationChannel.objects.get(pk=mail.pk).secret == mail.secret
