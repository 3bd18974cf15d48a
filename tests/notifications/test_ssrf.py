"""Webhook URLs that point into our own network are refused when saved (400 naming the field) and again when
delivering; the connection goes to the checked address with the original Host header and TLS server name."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from itsm.models import DeliveryAttempt, NotificationChannel, WebhookEndpoint
from itsm.notifiers.ssrf import address_refusal
from itsm.services.notifications import notify
from itsm.tasks.notifications import deliver_notification
from tests.factories import ServiceFactory
from tests.notifications.conftest import Receiver, make_incident

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/notification-channels/"

HOSTILE_URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:6379/",
    "http://localhost/",
    "http://LOCALHOST./hook",
    "http://app.localhost/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/admin",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::1]/",
    "http://[::]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://user:password@example.com/",
    "http://example.com@127.0.0.1/",
    "http://127.0.0.1\\@example.com/",
    "http://example .com/",
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "javascript:alert(1)",
    "//example.com/hook",
    "http:///nohost",
    "http://example.com:99999/",
    "http://example.com:0/",
]


def _loopback_names() -> list[str]:
    """Host names that resolve to loopback on this machine, other than localhost (refused by name anyway)."""
    names = []
    for name in ("localhost.localdomain", "ip6-localhost", socket.gethostname()):
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
        except OSError:
            continue
        if addresses and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
            names.append(name)
    return names


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_hostile_webhook_url_is_a_400_naming_the_target(as_requester: APIClient, url: str) -> None:
    response = as_requester.post(CHANNELS, {"channel": "webhook", "target": url}, format="json")
    assert response.status_code == 400, (url, response.content)
    assert list(response.json()) == ["target"], response.json()
    assert not NotificationChannel.objects.exists()


@pytest.mark.parametrize("name", _loopback_names() or ["(none on this machine)"])
def test_a_host_name_that_resolves_to_loopback_is_refused(as_requester: APIClient, name: str) -> None:
    if name.startswith("("):
        pytest.skip("no host name other than localhost resolves to loopback here")
    response = as_requester.post(CHANNELS, {"channel": "slack", "target": f"http://{name}/hook"}, format="json")
    assert response.status_code == 400
    assert "resolves to" in response.json()["target"][0]


def test_the_messages_say_why(as_requester: APIClient) -> None:
    def error(url: str) -> str:
        response = as_requester.post(CHANNELS, {"channel": "webhook", "target": url}, format="json")
        return str(response.json()["target"][0])

    assert error("http://127.0.0.1/") == "127.0.0.1 is a loopback address; webhooks may only go to public addresses."
    assert "resolves to 127.0.0.1, a loopback address" in error("http://2130706433/")
    assert "cloud metadata" in error("http://169.254.169.254/latest/meta-data/")
    assert "cloud metadata" in error("http://metadata.google.internal/")
    assert error("file:///etc/passwd") == "Only http and https URLs are allowed, not file:."
    assert "cannot be resolved" in error("http://no-such-host.invalid/")


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("93.184.215.14", False),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("100.100.100.200", True),
        ("::ffff:10.0.0.1", True),
        ("2002:7f00:1::", True),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 around 169.254.169.254
        ("ff02::1", True),
        ("192.0.2.1", True),  # documentation range, not routable
    ],
)
def test_address_policy(address: str, refused: bool) -> None:
    assert (address_refusal(ipaddress.ip_address(address), private_ok=False) is not None) is refused


def test_allowing_private_addresses_still_refuses_metadata_multicast_and_unspecified() -> None:
    for address in ("127.0.0.1", "10.0.0.1", "::1", "fe80::1", "192.168.0.10"):
        assert address_refusal(ipaddress.ip_address(address), private_ok=True) is None, address
    for address in ("169.254.169.254", "fd00:ec2::254", "0.0.0.0", "224.0.0.1", "::ffff:169.254.169.254"):  # noqa: S104
        assert address_refusal(ipaddress.ip_address(address), private_ok=True) is not None, address


def test_the_admin_refuses_a_hostile_endpoint_url_naming_the_field(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    form = {"name": "Ops", "kind": "webhook", "secret": "s3cret", "enabled": "on", "team": ""}
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::1]/", "file:///etc/passwd"):
        response = client.post("/admin/itsm/webhookendpoint/add/", {**form, "url": url})
        assert response.status_code == 200, url
        errors = response.context["adminform"].form.errors
        assert list(errors) == ["url"], (url, errors)
    assert not WebhookEndpoint.objects.exists()


def test_a_stored_hostile_url_is_refused_at_delivery_and_nothing_is_sent(receiver: Callable[..., Receiver]) -> None:
    """Saved while private addresses were allowed, or its DNS changed since: delivery checks again."""
    hook = receiver()  # listening on 127.0.0.1, which must not be reached
    WebhookEndpoint.objects.create(name="Inside", url=hook.url)
    incident = make_incident(ServiceFactory.create())
    [notification] = notify(users=[], subject="Paged", body="", incident=incident)
    assert deliver_notification(notification.pk) == "failed"
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert attempt.error.startswith("refused: 127.0.0.1 is a loopback address")
    assert hook.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "file:///etc/passwd",
    ],
)
def test_hostile_urls_stored_anyhow_fail_for_good_at_delivery(url: str) -> None:
    WebhookEndpoint.objects.create(name="Stored before the check", url=url)
    [notification] = notify(users=[], subject="Paged", body="", incident=make_incident(ServiceFactory.create()))
    assert deliver_notification(notification.pk) == "failed"
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert attempt.error.startswith("refused: ")
    assert attempt.status_code is None


def test_the_request_keeps_the_host_name_in_the_host_header(
    receiver: Callable[..., Receiver], allow_private: None
) -> None:
    hook = receiver()
    url = hook.url.replace("127.0.0.1", "localhost")
    WebhookEndpoint.objects.create(name="By name", url=url)
    [notification] = notify(users=[], subject="Paged", body="", incident=make_incident(ServiceFactory.create()))
    assert deliver_notification(notification.pk) == "delivered"
    port = url.split(":")[2].split("/")[0]
    assert hook.requests[0].headers["Host"] == f"localhost:{port}"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server with a self-signed certificate for localhost that records the TLS server name asked for."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name) or None  # type: ignore[func-returns-value]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], names
    server.shutdown()
    server.server_close()


def test_https_sends_the_host_name_as_tls_server_name_and_checks_the_certificate(
    tls_server: tuple[int, list[str]], allow_private: None
) -> None:
    port, names = tls_server
    WebhookEndpoint.objects.create(name="TLS", url=f"https://localhost:{port}/hook")
    [notification] = notify(users=[], subject="Paged", body="", incident=make_incident(ServiceFactory.create()))
    # Connected by address, yet the server was asked for "localhost"; its self-signed certificate is refused.
    assert deliver_notification(notification.pk) == "failed"
    assert names == ["localhost"]
    assert "TLS certificate of localhost not accepted" in DeliveryAttempt.objects.get(notification=notification).error
