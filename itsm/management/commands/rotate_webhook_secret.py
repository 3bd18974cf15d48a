"""`python manage.py rotate_webhook_secret <channel id>` (a user's webhook channel) or `--endpoint <name>` (an
admin's webhook endpoint): a new signing secret, printed once on stdout for the receiver; the former one goes on
signing beside it for `--window-hours` (24 by default). docs/runbooks/rotate-secrets.md."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.exceptions import InvalidInput
from itsm.models import Notification, NotificationChannel, WebhookEndpoint
from itsm.services.notification_channels import ROTATION_WINDOW, Signed, webhook_secret_rotate


class Command(BaseCommand):
    help = "Give a webhook a new signing secret (printed on stdout); the former one signs beside it for a while."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("channel", nargs="?", type=int, help="The id of a user's webhook notification channel.")
        parser.add_argument("--endpoint", help="The name of an admin's webhook endpoint, instead of a channel id.")
        parser.add_argument(
            "--window-hours",
            type=int,
            default=int(ROTATION_WINDOW.total_seconds() // 3600),
            help="How long the former secret keeps signing beside the new one (0: it stops at once; default 24).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        signed = self._target(options["channel"], options["endpoint"])
        try:
            rotated = webhook_secret_rotate(signed=signed, window=timedelta(hours=options["window_hours"]))
        except InvalidInput as exc:
            raise CommandError("; ".join(message for messages in exc.errors.values() for message in messages)) from exc
        self.stdout.write(rotated.secret)
        until = rotated.previous_secret_expires_at
        note = f"the former secret signs beside it until {until.isoformat()}" if until else "the former one no longer"
        self.stderr.write(f"Rotated the signing secret of {signed}: {note}.")

    def _target(self, channel_id: int | None, endpoint: str | None) -> Signed:
        if endpoint is not None and channel_id is None:
            found = WebhookEndpoint.objects.filter(name=endpoint).first()
            if found is None:
                raise CommandError(f"No webhook endpoint is named {endpoint!r}.")
            if found.kind != WebhookEndpoint.Kind.WEBHOOK:
                raise CommandError(f"The endpoint {endpoint!r} is a Slack webhook: it is not signed.")
            return found
        if channel_id is None or endpoint is not None:
            raise CommandError("Name one webhook: a channel id, or --endpoint <name>.")
        channel = NotificationChannel.objects.filter(pk=channel_id).select_related("user").first()
        if channel is None:
            raise CommandError(f"No notification channel has the id {channel_id}.")
        if channel.channel != Notification.Channel.WEBHOOK:
            raise CommandError(f"Channel {channel_id} is a {channel.channel} channel: only webhooks are signed.")
        return channel
