"""One HTTP POST to a checked address: resolved once by the SSRF guard, connected to by that address with the
original Host header and TLS server name, short timeouts, a bounded read, and redirects never followed."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from django.conf import settings

from itsm.notifiers.base import PermanentError, TransientError
from itsm.notifiers.ssrf import Destination, Unresolvable, UnsafeURL, resolve

USER_AGENT = "ITSM-Platform-Notifier/1.0"
# Enough of the receiver's answer to explain a failure in the delivery log.
MAX_RESPONSE_BYTES = 4096


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    text: str
    location: str


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `address`, while the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address`, with the URL's host as the TLS server name (SNI) and for the certificate check."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST `body` to `url`. Raises PermanentError for a refused URL, TransientError when the receiver cannot be
    reached; any HTTP answer, redirects included, is returned as it is."""
    try:
        destination = resolve(url)
    except UnsafeURL as exc:
        raise PermanentError(f"refused: {exc}") from None
    except Unresolvable as exc:
        raise TransientError(str(exc)) from None
    timeout = float(settings.ITSM_WEBHOOK_TIMEOUT_SECONDS)
    failures = []
    for address in destination.addresses:
        connection = _connection(destination, address, timeout)
        try:
            try:
                connection.connect()
            except ssl.SSLCertVerificationError as exc:
                raise PermanentError(
                    f"TLS certificate of {destination.host} not accepted: {exc.verify_message}"
                ) from None
            except OSError as exc:
                failures.append(f"{address}: {exc}")
                continue
            return _exchange(connection, destination, body, headers)
        finally:
            connection.close()
    raise TransientError(f"cannot connect to {destination.host}:{destination.port} ({'; '.join(failures)})")


def _connection(destination: Destination, address: str, timeout: float) -> http.client.HTTPConnection:
    if destination.scheme == "https":
        return _PinnedHTTPSConnection(destination.host, destination.port, address, timeout)
    return _PinnedHTTPConnection(destination.host, destination.port, address, timeout)


def _exchange(
    connection: http.client.HTTPConnection, destination: Destination, body: bytes, headers: dict[str, str]
) -> Response:
    try:
        connection.request("POST", destination.path, body=body, headers={"User-Agent": USER_AGENT, **headers})
        answer = connection.getresponse()
        text = answer.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise TransientError(f"{destination.host}: {type(exc).__name__}: {exc}") from None
    return Response(status=answer.status, reason=answer.reason, text=text, location=answer.getheader("Location") or "")


def check_status(response: Response) -> None:
    """2xx is delivered. 3xx is never followed (it could point anywhere) and fails for good, as do 4xx other than
    408, 425 and 429; those and 5xx are worth another try."""
    status = response.status
    if 200 <= status < 300:
        return
    detail = f"{status} {response.reason}".strip()
    if 300 <= status < 400:
        raise PermanentError(f"redirect not followed: {detail} to {response.location or '(no Location)'}", status)
    summary = f"receiver answered {detail}" + (f": {response.text[:500]}" if response.text.strip() else "")
    if status >= 500 or status in (408, 425, 429) or status < 200:
        raise TransientError(summary, status)
    raise PermanentError(summary, status)
