"""What every transport takes and the two ways it can fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class DeliveryError(Exception):
    """A delivery attempt failed; `status_code` is the receiver's HTTP status when there was one."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientError(DeliveryError):
    """Worth trying again later: a timeout, a refused connection, a 5xx, a 429."""


class PermanentError(DeliveryError):
    """Trying again cannot help: a refused address, a redirect, a 4xx, a rejected recipient."""


@dataclass(frozen=True)
class Message:
    """One notification as a transport sees it."""

    notification_id: int
    target: str
    subject: str
    body: str
    created_at: datetime
    urgent: bool = False
    payload: dict[str, Any] = field(default_factory=dict)
    # The HMAC key for signed webhooks; empty for other channels.
    secret: str = ""
    # During a secret rotation's window, the former key: the webhook then carries a signature with each.
    previous_secret: str = ""
    # E-mail: the HTML alternative and the thread headers (Message-ID, In-Reply-To, References).
    html_body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    """A successful delivery; `status_code` is the receiver's HTTP status (None for e-mail)."""

    status_code: int | None = None
