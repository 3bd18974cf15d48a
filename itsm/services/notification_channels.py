"""A user's own notification channels: the check of a new or changed target, and how a target is shown."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from itsm.exceptions import InvalidInput
from itsm.models import Notification, NotificationChannel
from itsm.notifiers import ssrf

Channel = Notification.Channel


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
