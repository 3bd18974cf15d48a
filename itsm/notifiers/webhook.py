"""Signed webhooks: a JSON POST with an HMAC-SHA256 signature over the timestamp and the raw body.

The receiver recomputes `sha256=` + hex(HMAC-SHA256(secret, timestamp + "." + body)) from the
`X-ITSM-Timestamp` header and the body bytes as received, compares it in constant time with each comma-separated
entry of `X-ITSM-Signature`, and refuses timestamps older than a few minutes, so a captured request cannot be
replayed later. Usually the header holds one entry; during a secret rotation's window it holds two,
`sha256=<with the new secret>,sha256=<with the former one>`, the way Stripe's header carries a `v1=` entry per
secret while one rolls: a receiver holding either secret accepts the delivery. `verify()` is that check; the recipe
is in docs/api.md ("Verifying webhook signatures").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

from itsm.notifiers.base import Message, PermanentError, Sent
from itsm.notifiers.transport import check_status, post

SIGNATURE_HEADER = "X-ITSM-Signature"
TIMESTAMP_HEADER = "X-ITSM-Timestamp"
NOTIFICATION_HEADER = "X-ITSM-Notification"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of the signature header for `body` sent at `timestamp` (Unix seconds, as a string)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_header(secret: str, previous_secret: str, timestamp: str, body: bytes) -> str:
    """The X-ITSM-Signature value: the new secret's signature first, then the former one's while it lasts."""
    values = [signature(secret, timestamp, body)]
    if previous_secret:
        values.append(signature(previous_secret, timestamp, body))
    return ",".join(values)


def verify(
    secrets: str | Iterable[str],
    timestamp: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """The receiver's check: True if one entry of the X-ITSM-Signature `header` was made with one of `secrets` (a
    receiver may hold the new and the former while it moves) over `body` at `timestamp`, at most `tolerance` seconds
    from `now`."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - signed_at) > tolerance:
        return False
    entries = [entry.strip() for entry in header.split(",") if entry.strip()]
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [signature(key, timestamp, body) for key in keys if key]
    # Every pair compared, with no early exit, so the time taken says nothing about which entry matched.
    matches = [hmac.compare_digest(entry, wanted) for entry in entries for wanted in expected]
    return any(matches)


def document(message: Message) -> dict[str, Any]:
    """The JSON object a webhook receives."""
    return {
        "notification_id": message.notification_id,
        "subject": message.subject,
        "body": message.body,
        "urgent": message.urgent,
        "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
        **message.payload,
    }


def send(message: Message) -> Sent:
    if not message.secret:
        raise PermanentError("the webhook has no signing secret (its endpoint or channel was removed)")
    body = json.dumps(document(message), separators=(",", ":"), sort_keys=True, default=str).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature_header(message.secret, message.previous_secret, timestamp, body),
        NOTIFICATION_HEADER: str(message.notification_id),
    }
    response = post(message.target, body, headers)
    check_status(response)
    return Sent(status_code=response.status)
