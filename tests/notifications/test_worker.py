"""End to end: a change commits, a real Celery worker takes the delivery off the Redis broker and the webhook
receiver gets one signed request."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

from itsm.models import Notification, WebhookEndpoint
from itsm.notifiers import webhook
from itsm.services.notifications import notify
from tests.factories import ServiceFactory
from tests.notifications.conftest import Receiver, make_incident
from tests.system.processes import BIN, base_env, started

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_on_the_notification_queues_delivers_what_a_committed_change_wrote(
    tmp_path, receiver: Callable[..., Receiver], allow_private: None
) -> None:
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
    )
    env = base_env(
        DATABASE_URL=url, REDIS_URL=settings.REDIS_URL, ITSM_VAR_DIR=str(tmp_path), ITSM_WEBHOOK_ALLOW_PRIVATE="true"
    )
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("notifications", "critical")
    hook = receiver(500)
    endpoint = WebhookEndpoint.objects.create(name="Ops", url=hook.url)
    incident = make_incident(ServiceFactory.create())
    command = [str(BIN / "celery"), "-A", "itsm_project", "worker", "-Q", "critical,notifications"]
    command += ["--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    with started(command, env, tmp_path / "worker.log"):
        with transaction.atomic():
            [notification] = notify(users=[], subject="Paged", body="", incident=incident, urgent=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not hook.requests:
            time.sleep(0.2)
        assert hook.requests, (tmp_path / "worker.log").read_text()[-3000:]
        # The 500 leaves the row pending for a retry by the relay.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Notification.objects.get(pk=notification.pk).attempts == 0:
            time.sleep(0.2)
    row = Notification.objects.get(pk=notification.pk)
    assert (row.status, row.attempts) == ("pending", 1)
    request = hook.requests[0]
    assert request.headers["X-ITSM-Signature"] == webhook.signature(
        endpoint.secret, request.headers["X-ITSM-Timestamp"], request.body
    )
