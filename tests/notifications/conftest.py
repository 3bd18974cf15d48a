"""A real webhook receiver on loopback, the broker queues, and incidents to notify about."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from itsm.models import Incident, Service
from itsm_project.celery import app as celery_app

QUEUES = ("notifications", "critical")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers POSTs with the given statuses in turn (then 200), recording every request."""

    statuses: list[int]
    delay: float = 0.0
    location: str = ""
    requests: list[Received] = field(default_factory=list)
    # Called in the receiver's thread while a request waits for its answer.
    on_request: Callable[[], None] | None = None
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
            if receiver.on_request:
                receiver.on_request()
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.answer()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", receiver.location or "http://127.0.0.1:1/elsewhere")
            payload = b"ok" if status < 300 else b"not today"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """`receiver(500, 500)` starts a webhook receiver on 127.0.0.1 answering 500, 500, then 200."""
    servers: list[ThreadingHTTPServer] = []

    def start(*statuses: int, delay: float = 0.0, location: str = "", path: str = "/hooks/itsm") -> Receiver:
        state = Receiver(statuses=list(statuses), delay=delay, location=location)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def allow_private(settings: Any) -> None:
    """The receiver is on loopback, which the SSRF guard refuses unless this setting is on."""
    settings.ITSM_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """The test's broker Redis, with the notification queues emptied before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*QUEUES)
    yield client
    client.delete(*QUEUES)


def queued_ids(client: redis.Redis, queue: str = "notifications") -> list[int]:
    """The notification ids of the delivery messages waiting in `queue` (kombu's Redis format)."""
    ids = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "itsm.tasks.notifications.deliver_notification"
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return sorted(ids)


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The broker refuses every message, as kombu does when Redis is unreachable. Returns the refused task names."""
    refused: list[str] = []

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        refused.append(name)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery_app, "send_task", refuse)
    return refused


def make_incident(*services: Service, title: str = "API returns 502", severity: str = "critical") -> Incident:
    now = timezone.now()
    incident = Incident.objects.create(
        title=title,
        severity=severity,
        detected_at=now,
        response_due_at=now + timedelta(minutes=15),
        updated_at=now,
    )
    incident.services.set(services)
    return incident
