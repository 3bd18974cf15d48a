"""The token client of services.mail_oauth2 against token endpoints that misbehave: a small HTTP server in this
process answers what each test scripts (oidc-provider, in test_oauth2.py, only behaves). What is sent, how long a
token is held, and a sentence for every way the endpoint can fail."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus

import pytest

from itsm.mail.imap import MailboxUnavailable, OAuth2Client
from itsm.services import mail_oauth2
from itsm.services.mail_oauth2 import mail_oauth2_token
from tests.system.processes import free_port

SECRET = "s3cret+with/odd=chars~"


@dataclass
class Endpoint:
    """A token endpoint on loopback: it answers `answers` in turn (the last one again and again), and keeps each
    request it got as (path, headers, form)."""

    port: int
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def url(self, path: str = "/token") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer_json(self, body: object, status: int = 200) -> None:
        self.answers.append((status, {"Content-Type": "application/json"}, json.dumps(body).encode()))

    def client(
        self, *, scope: str = "https://outlook.office365.com/.default", client_id: str = "app 1"
    ) -> OAuth2Client:
        return OAuth2Client(token_url=self.url(), client_id=client_id, client_secret=SECRET, scope=scope)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = Endpoint(port=server.server_address[1])
    server.endpoint = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        state: Endpoint = self.server.endpoint  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {key: values[-1] for key, values in parse_qs(body).items()}
        state.requests.append((self.path, dict(self.headers), form))
        status, headers, content = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args: object) -> None:
        return


def test_the_request_is_the_client_credentials_grant_with_the_client_in_http_basic(endpoint: Endpoint) -> None:
    endpoint.answer_json({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3599})

    token = mail_oauth2_token(client=endpoint.client(), timeout=5)

    assert (token.value, token.held) == ("tok-1", False)
    ((path, headers, form),) = endpoint.requests
    assert path == "/token"
    assert form == {"grant_type": "client_credentials", "scope": "https://outlook.office365.com/.default"}
    user, _, password = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode().partition(":")
    # RFC 6749 §2.3.1: id and secret form-encoded before Basic; the server decodes them back.
    assert (unquote_plus(user), unquote_plus(password)) == ("app 1", SECRET)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_token_is_held_until_shortly_before_it_expires_and_renewed_on_request(endpoint: Endpoint) -> None:
    endpoint.answer_json({"access_token": "tok-1", "token_type": "bearer", "expires_in": "3599"})
    endpoint.answer_json({"access_token": "tok-2", "token_type": "Bearer", "expires_in": 3599})
    client = endpoint.client(scope="")

    first, again = mail_oauth2_token(client=client, timeout=5), mail_oauth2_token(client=client, timeout=5)
    renewed = mail_oauth2_token(client=client, timeout=5, renew=True)

    assert [(t.value, t.held) for t in (first, again, renewed)] == [("tok-1", False), ("tok-1", True), ("tok-2", False)]
    assert [form for _, _, form in endpoint.requests] == [{"grant_type": "client_credentials"}] * 2  # no scope
    (held,) = (h for key, h in mail_oauth2._held.items() if key[0] == endpoint.url())
    assert held.renew_at - mail_oauth2.time.monotonic() == pytest.approx(3599 - 60, abs=5)


@pytest.mark.parametrize(("expires_in", "held_for"), [(None, 300 - 60), ("soon", 300 - 60), (40, 20)])
def test_a_token_without_a_sensible_lifetime_is_held_briefly(
    endpoint: Endpoint, expires_in: object, held_for: float
) -> None:
    endpoint.answer_json({"access_token": "tok", **({"expires_in": expires_in} if expires_in else {})})

    mail_oauth2_token(client=endpoint.client(client_id=f"app-{expires_in}"), timeout=5)

    (held,) = (h for key, h in mail_oauth2._held.items() if key[:2] == (endpoint.url(), f"app-{expires_in}"))
    assert held.renew_at - mail_oauth2.time.monotonic() == pytest.approx(held_for, abs=5)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            (
                401,
                {"Content-Type": "application/json"},
                b'{"error": "invalid_client", "error_description": "AADSTS7000215:\\n Invalid client secret given."}',
            ),
            "refused client 'app 1': invalid_client (AADSTS7000215: Invalid client secret given.) (HTTP 401)",
        ),
        (
            (400, {}, b'{"error": "invalid_scope"}'),
            "refused client 'app 1': invalid_scope (HTTP 400)",
        ),
        (
            (500, {"Content-Type": "text/html"}, b"<h1>oops</h1>"),
            "answered client 'app 1' with HTTP 500 Internal Server",
        ),
        ((200, {}, b"<html>sign in</html>"), "answered client 'app 1' without an access token"),
        ((200, {}, b'{"token_type": "Bearer"}'), "answered client 'app 1' without an access token"),
        ((200, {}, b'{"access_token": "t", "token_type": "mac"}'), "gave a 'mac' token; IMAP sign-in needs a Bearer"),
        (
            (302, {"Location": "http://elsewhere.example/steal"}, b""),
            "HTTP 302 (a redirect to 'http://elsewhere.example/",
        ),
        ((200, {}, b'{"access_token": "' + b"x" * 70000 + b'"}'), "answered client 'app 1' without an access token"),
        (
            (401, {}, b'{"error": "invalid_client", "error_description": "bad secret ' + SECRET.encode() + b'"}'),
            "invalid_client (bad secret [client secret]) (HTTP 401)",
        ),
    ],
)
def test_every_failure_of_the_endpoint_is_one_sentence(
    endpoint: Endpoint, answer: tuple[int, dict[str, str], bytes], said: str
) -> None:
    endpoint.answers.append(answer)

    with pytest.raises(MailboxUnavailable) as caught:
        mail_oauth2_token(client=endpoint.client(), timeout=5)

    assert str(caught.value).startswith(f"the OAuth2 token endpoint {endpoint.url()} ")
    assert said in str(caught.value)
    assert SECRET not in str(caught.value)
    assert len(endpoint.requests) == 1  # a redirect was not followed


def test_nothing_listening_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there, and no other test is handed it
    client = OAuth2Client(token_url=f"http://127.0.0.1:{port}/token", client_id="c", client_secret=SECRET)

    with pytest.raises(
        MailboxUnavailable, match=rf"^cannot reach the OAuth2 token endpoint .*:{port}/token: .*refused"
    ):
        mail_oauth2_token(client=client, timeout=5)


def test_an_endpoint_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = OAuth2Client(token_url=f"http://127.0.0.1:{port}/token", client_id="c", client_secret=SECRET)

        with pytest.raises(MailboxUnavailable, match=r"^cannot reach the OAuth2 token endpoint .*: timed out"):
            mail_oauth2_token(client=client, timeout=0.5)
