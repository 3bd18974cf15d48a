"""The notification log in the admin: attempts inline, a redeliver action; webhook endpoints and channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from itsm.models import DeliveryAttempt, Notification, NotificationChannel, WebhookEndpoint
from itsm.services.notifications import notify
from itsm.tasks.notifications import deliver_notification
from tests.factories import ServiceFactory, TeamFactory
from tests.notifications.conftest import Receiver, make_incident

pytestmark = pytest.mark.django_db

LOG = "/admin/itsm/notification/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_log_shows_notifications_with_their_attempts(agent: Any, mailoutbox: list[Any]) -> None:
    NotificationChannel.objects.create(
        user=agent, channel="slack", target="https://hooks.slack.com/services/T/B/SECRET"
    )
    incident = make_incident(ServiceFactory.create())
    [notification] = notify(users=[agent], subject="Paged about INC", body="", incident=incident)
    DeliveryAttempt.objects.create(
        notification=notification, attempted_at=notification.created_at, success=False, status_code=503, error="busy"
    )
    client = _client(agent)
    for query in ("", "?status__exact=pending", "?channel__exact=slack", "?q=Paged", "?urgent__exact=0"):
        listing = client.get(LOG + query)
        assert listing.status_code == 200, query
        assert "Paged about INC" in listing.content.decode()
        assert "SECRET" not in listing.content.decode()
    page = client.get(f"{LOG}{notification.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "busy" in content
    assert "SECRET" not in content
    assert client.get(LOG + "add/").status_code == 403


def test_the_redeliver_action_queues_failed_ones_and_skips_pending_ones(
    admin: Any, agent: Any, receiver: Callable[..., Receiver], allow_private: None, mailoutbox: list[Any]
) -> None:
    hook = receiver(404)
    WebhookEndpoint.objects.create(name="Ops", url=hook.url)
    incident = make_incident(ServiceFactory.create())
    failed, email = notify(users=[agent], subject="Paged", body="", incident=incident)[::-1]
    assert deliver_notification(failed.pk) == "failed"
    response = _client(admin).post(LOG, {"action": "redeliver", "_selected_action": [failed.pk, email.pk]}, follow=True)
    assert response.status_code == 200
    content = response.content.decode()
    assert "1 notification(s) queued for redelivery." in content
    assert "still being delivered" in content
    assert Notification.objects.get(pk=failed.pk).status == "pending"
    assert deliver_notification(failed.pk) == "delivered"


def test_requesters_have_no_access_to_the_log(requester: Any) -> None:
    requester.is_staff = True  # even with admin access, the role decides
    requester.save()
    assert _client(requester).get(LOG).status_code == 403


def test_admins_add_a_webhook_endpoint_for_a_team(
    admin: Any, receiver: Callable[..., Receiver], allow_private: None
) -> None:
    team = TeamFactory.create()
    hook = receiver()
    response = _client(admin).post(
        "/admin/itsm/webhookendpoint/add/",
        {
            "name": "Platform chat",
            "kind": "slack",
            "url": f"  {hook.url}  ",
            "secret": "s3cret",
            "enabled": "on",
            "team": team.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.team) == (hook.url, team)
    listing = _client(admin).get("/admin/itsm/webhookendpoint/")
    assert "Platform chat" in listing.content.decode()
    assert "/hooks/itsm" not in listing.content.decode()


def test_agents_cannot_see_webhook_endpoints(agent: Any) -> None:
    assert _client(agent).get("/admin/itsm/webhookendpoint/").status_code == 403


def test_an_admin_edits_a_users_channel_with_the_same_checks(admin: Any, agent: Any) -> None:
    client = _client(admin)
    form = {"user": agent.pk, "channel": "webhook", "target": "http://10.0.0.1/", "enabled": "on", "secret": "x"}
    response = client.post("/admin/itsm/notificationchannel/add/", form)
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["target"]
    form |= {"channel": "email", "target": "alice.pager@example.com"}
    assert client.post("/admin/itsm/notificationchannel/add/", form).status_code == 302
    assert NotificationChannel.objects.get().target == "alice.pager@example.com"
    assert client.get("/admin/itsm/notificationchannel/").status_code == 200
