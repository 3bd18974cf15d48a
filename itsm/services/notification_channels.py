"""A user's own notification channels: the check of a new or changed target, how a target is shown, and the
rotation of a webhook's signing secret (for users' channels and admins' endpoints alike)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from itsm.exceptions import InvalidInput
from itsm.models import Notification, NotificationChannel, WebhookEndpoint
from itsm.models.notifications import generate_secret
from itsm.notifiers import ssrf
from itsm.services.versioned import version_bump, version_bumped, version_check

Channel = Notification.Channel
Signed = NotificationChannel | WebhookEndpoint

# How long a former secret keeps signing after a rotation unless the rotation says otherwise, and the longest allowed.
ROTATION_WINDOW = timedelta(hours=24)
MAX_ROTATION_WINDOW = timedelta(days=30)


def target_display(channel: str, target: str) -> str:
    """A target fit to show: webhook URLs often carry a credential in their path (Slack's do), so only their scheme
    and host are shown."""
    if channel == Channel.EMAIL:
        return target
    parts = urlsplit(target)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…" if parts.netloc else "…"


def notification_channel_check(*, user: Any, channel: str | None, target: str, exclude: int | None = None) -> str:
    """The target of a new or changed channel of `user`, trimmed, if it is usable: a valid e-mail address, or for
    webhooks a URL that passes the SSRF guard; and not a duplicate. Raises InvalidInput naming the field."""
    if channel not in Channel.values:
        raise InvalidInput({"channel": [f"Choose one of {', '.join(Channel.values)}."]})
    target = (target or "").strip()
    if not target:
        raise InvalidInput({"target": ["This field may not be blank."]})
    if channel == Channel.EMAIL:
        try:
            validate_email(target)
        except ValidationError:
            raise InvalidInput({"target": ["Enter a valid e-mail address."]}) from None
    else:
        try:
            ssrf.resolve(target)
        except (ssrf.UnsafeURL, ssrf.Unresolvable) as exc:
            raise InvalidInput({"target": [str(exc)]}) from None
    duplicates = NotificationChannel.objects.filter(user=user, channel=channel, target=target)
    if exclude is not None:
        duplicates = duplicates.exclude(pk=exclude)
    if duplicates.exists():
        raise InvalidInput({"target": ["You already have this channel."]})
    return target


def signing_secrets(signed: Signed, *, now: datetime | None = None) -> tuple[str, str]:
    """The secret that signs `signed`'s deliveries now, and the former one while its rotation window lasts ("")."""
    expires = signed.previous_secret_expires_at
    if signed.previous_secret and expires is not None and expires > (now or timezone.now()):
        return signed.secret, signed.previous_secret
    return signed.secret, ""


def webhook_secret_rotate(
    *, signed: Signed, window: timedelta = ROTATION_WINDOW, expected_version: int | None = None
) -> Signed:
    """Give `signed` a fresh signing secret. The former one goes on signing beside it for `window` (zero: it stops at
    once), so the receiver can switch to the new secret without refusing a delivery. A rotation during another's
    window drops the secret before the former one. Raises InvalidInput for a window out of range."""
    if window < timedelta(0) or window > MAX_ROTATION_WINDOW:
        raise InvalidInput({"window_hours": [f"Must be between 0 and {MAX_ROTATION_WINDOW.days * 24} hours."]})
    with transaction.atomic():
        locked = type(signed).objects.select_for_update().get(pk=signed.pk)
        fields = ["secret", "previous_secret", "previous_secret_expires_at"]
        if isinstance(locked, NotificationChannel):  # a user's channel is versioned (an admin's endpoint is not)
            version_check(locked, expected_version)
            fields.append(version_bump(locked))
        locked.previous_secret = locked.secret if window else ""
        locked.previous_secret_expires_at = timezone.now() + window if window else None
        locked.secret = generate_secret()
        locked.save(update_fields=fields)
        if isinstance(locked, NotificationChannel):
            version_bumped(locked)
    return locked
