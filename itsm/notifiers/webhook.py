"""Signed webhooks: a JSON POST with an HMAC-SHA256 signature over the timestamp and the raw body.

The receiver recomputes `sha256=` + hex(HMAC-SHA256(secret, timestamp + "." + body)) from the
`X-ITSM-Timestamp` header and the body bytes as received, compares it with `X-ITSM-Signature` in constant time,
and refuses timestamps older than a few minutes, so a captured request cannot be replayed later. The recipe, with
code, is in docs/api.md ("Verifying webhook signatures").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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
        SIGNATURE_HEADER: signature(message.secret, timestamp, body),
        NOTIFICATION_HEADER: str(message.notification_id),
    }
    response = post(message.target, body, headers)
    check_status(response)
    return Sent(status_code=response.status)
