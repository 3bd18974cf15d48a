"""OAuth2 access tokens for the mailboxes that sign in with them (Microsoft 365): the client-credentials grant
(RFC 6749 §4.4) at the mailbox's token URL, each token kept in this process until shortly before it expires.

The client secret comes with the `OAuth2Client` (read from a file, an environment variable or
ITSM_MAIL_OAUTH2_CLIENT_SECRET by the caller); it is sent to the token URL only, never stored, logged or put in an
error message. Every failure is `MailboxUnavailable` with a sentence that names the endpoint and the client.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlencode

from itsm.mail.imap import MailboxUnavailable, OAuth2Client

logger = logging.getLogger(__name__)

# A token endpoint answers a few hundred bytes; more is not a token answer.
MAX_ANSWER_BYTES = 64 * 1024
# expires_in is only RECOMMENDED (RFC 6749 §5.1): a token of unknown lifetime is used for five minutes at most.
UNKNOWN_LIFETIME_SECONDS = 300
# A token is renewed this long before it expires (at most half its lifetime), so that it outlives the sign-in.
RENEW_BEFORE_SECONDS = 60


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    # Whether it was held from an earlier request: a held token the server refuses is worth renewing once.
    held: bool


@dataclass(frozen=True)
class _Held:
    value: str = field(repr=False)
    renew_at: float


_held: dict[tuple[str, str, str, str], _Held] = {}
_lock = threading.Lock()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A token endpoint does not redirect; following one would send the client's credentials elsewhere."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects())


def mail_oauth2_token(*, client: OAuth2Client, timeout: float, renew: bool = False) -> AccessToken:
    """An access token of `client`: the one this process holds until shortly before it expires, else a new one.
    `renew` drops the held one first (the IMAP server refused it: revoked, or expired before its time)."""
    key = (client.token_url, client.client_id, client.scope, hashlib.sha256(client.client_secret.encode()).hexdigest())
    with _lock:
        if renew:
            _held.pop(key, None)
        held = _held.get(key)
    if held is not None and time.monotonic() < held.renew_at:
        return AccessToken(held.value, held=True)
    asked_at = time.monotonic()
    value, lifetime = _client_credentials_grant(client, timeout)
    with _lock:
        _held[key] = _Held(value, asked_at + lifetime - min(RENEW_BEFORE_SECONDS, lifetime / 2))
    logger.info("OAuth2 access token of client %s from %s, valid %d s", client.client_id, client.token_url, lifetime)
    return AccessToken(value, held=False)


def _client_credentials_grant(client: OAuth2Client, timeout: float) -> tuple[str, int]:
    """One token request (RFC 6749 §4.4.2): the access token and its lifetime in seconds."""
    form = {"grant_type": "client_credentials", **({"scope": client.scope} if client.scope else {})}
    # HTTP Basic, which every server must accept (RFC 6749 §2.3.1), of the form-encoded id and secret.
    basic = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
    # The URL's scheme is checked by OAuth2Client: https, or http to a loopback address.
    request = urllib.request.Request(  # noqa: S310
        client.token_url,
        data=urlencode(form).encode(),
        method="POST",
        headers={
            "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    where = f"the OAuth2 token endpoint {client.token_url}"
    try:
        with _opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise MailboxUnavailable(_scrubbed(_http_error(exc, where, client), client)) from None
    except urllib.error.URLError as exc:
        raise MailboxUnavailable(f"cannot reach {where}: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise MailboxUnavailable(f"cannot reach {where}: {exc or type(exc).__name__}") from None
    try:
        answer = json.loads(body) if len(body) <= MAX_ANSWER_BYTES else None
    except ValueError:
        answer = None
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(answer, dict) or not isinstance(token, str) or not token:
        raise MailboxUnavailable(f"{where} answered client {client.client_id!r} without an access token")
    token_type = str(answer.get("token_type", "Bearer"))
    if token_type.lower() != "bearer":
        raise MailboxUnavailable(f"{where} gave a {token_type!r} token; IMAP sign-in needs a Bearer token")
    return token, _lifetime(answer.get("expires_in"))


def _lifetime(expires_in: object) -> int:
    """Seconds from expires_in, which some servers send as a string; none or nonsense: the five-minute default."""
    try:
        seconds = int(str(expires_in))
    except ValueError:
        return UNKNOWN_LIFETIME_SECONDS
    return seconds if seconds > 0 else UNKNOWN_LIFETIME_SECONDS


def _http_error(exc: urllib.error.HTTPError, where: str, client: OAuth2Client) -> str:
    """The sentence for an error answer: RFC 6749 §5.2's error and error_description when the server gave them."""
    if 300 <= exc.code < 400:
        return f"{where} answered HTTP {exc.code} (a redirect to {exc.headers.get('Location')!r}, not followed)"
    try:
        answer = json.loads(exc.read(MAX_ANSWER_BYTES))
    except (ValueError, OSError):
        answer = None
    if isinstance(answer, dict) and answer.get("error"):
        said = str(answer["error"])
        if answer.get("error_description"):
            said += f" ({' '.join(str(answer['error_description']).split())[:300]})"
        return f"{where} refused client {client.client_id!r}: {said} (HTTP {exc.code})"
    return f"{where} answered client {client.client_id!r} with HTTP {exc.code} {exc.reason}"


def _scrubbed(text: str, client: OAuth2Client) -> str:
    # A server that echoes what it was sent must not put the secret into a mailbox's last error.
    return text.replace(client.client_secret, "[client secret]")
