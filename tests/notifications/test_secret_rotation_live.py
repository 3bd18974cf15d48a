"""A webhook secret rotated on the running platform (gunicorn for the API, a Celery worker for deliveries) while a
real receiver on loopback checks every delivery's signature and refuses what it cannot verify: during the window it
accepts deliveries holding the former secret and holding the new one; after the window only the new one works."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from itsm.models import Notification, NotificationChannel
from itsm.notifiers import webhook
from itsm.services.notifications import notify
from tests.deploy.test_nginx_live import database_url
from tests.factories import make_user
from tests.security.test_secret_rotation_live import PASSWORD, PRODUCTION_HASHERS, Platform
from tests.system.processes import BIN, base_env, http, started

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@dataclass
class VerifyingReceiver:
    """Answers 204 to a delivery whose X-ITSM-Signature verifies with the secret it holds, 401 otherwise."""

    secret: str = ""
    url: str = ""
    verdicts: list[bool] = field(default_factory=list)


@pytest.fixture
def verifying_receiver() -> Iterator[VerifyingReceiver]:
    state = VerifyingReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            timestamp, header = self.headers["X-ITSM-Timestamp"], self.headers["X-ITSM-Signature"]
            ok = webhook.verify(state.secret, timestamp, header, body)
            state.verdicts.append(ok)
            self.send_response(204 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/itsm"
    yield state
    server.shutdown()
    server.server_close()


def delivered_to(user: Any, subject: str) -> Notification:
    """Notify `user` (committed, so the worker gets it off the broker) and wait until the worker is done with it."""
    with transaction.atomic():
        [notification] = notify(users=[user], subject=subject, body="")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        notification.refresh_from_db()
        if notification.status != Notification.Status.PENDING:
            return notification
        time.sleep(0.2)
    raise AssertionError(f"{subject!r} still pending after 60 s: {notification.last_error}")


def test_a_receiver_holding_either_secret_accepts_deliveries_in_the_window_and_only_the_new_one_after(
    tmp_path: Path, verifying_receiver: VerifyingReceiver, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS  # the hashes gunicorn's settings can check
    owner = make_user("wendy", "agent")
    platform = Platform(tmp_path)
    worker_env = base_env(
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        ITSM_VAR_DIR=str(tmp_path / "worker"),
        ITSM_WEBHOOK_ALLOW_PRIVATE="true",
    )
    worker = [str(BIN / "celery"), "-A", "itsm_project", "worker", "-Q", "critical,notifications"]
    worker += ["--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    with (
        platform.running(ITSM_WEBHOOK_ALLOW_PRIVATE="true"),
        started(worker, worker_env, tmp_path / "worker.log"),
    ):
        status, _, body = http(
            "POST", f"{platform.base}/api/v1/auth/token/", {"username": "wendy", "password": PASSWORD}
        )
        assert status == 200, body
        token = body["token"]
        status, _, body = http(
            "POST",
            f"{platform.base}/api/v1/notification-channels/",
            {"channel": "webhook", "target": verifying_receiver.url},
            token=token,
        )
        assert status == 201, body
        channel_id, old = body["id"], body["secret"]
        verifying_receiver.secret = old
        assert delivered_to(owner, "Before").status == Notification.Status.DELIVERED

        read = f"{platform.base}/api/v1/notification-channels/{channel_id}/"
        etag = http("GET", read, token=token)[1]["ETag"]
        url = f"{read}rotate-secret/"
        status, _, body = http("POST", url, {"window_hours": 1}, token=token, headers={"If-Match": etag})
        assert status == 200, body
        new = body["secret"]
        assert delivered_to(owner, "In the window, receiver not moved yet").status == Notification.Status.DELIVERED
        verifying_receiver.secret = new
        assert delivered_to(owner, "In the window, receiver moved").status == Notification.Status.DELIVERED

        # The hour passes (the worker runs on the real clock, so the window's end is moved instead).
        NotificationChannel.objects.filter(pk=channel_id).update(
            previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert delivered_to(owner, "After the window").status == Notification.Status.DELIVERED
        verifying_receiver.secret = old  # a receiver that never moved
        late = delivered_to(owner, "After the window, receiver never moved")
        assert late.status == Notification.Status.FAILED
        assert "401" in late.last_error

    assert verifying_receiver.verdicts == [True, True, True, True, False]
