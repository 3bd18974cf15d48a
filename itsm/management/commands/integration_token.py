from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from itsm.exceptions import InvalidInput
from itsm.models import IntegrationToken
from itsm.roles import Scope
from itsm.services.integrations import DEFAULT_DAYS, integration_token_issue, integration_token_revoke


class Command(BaseCommand):
    help = "Issue, list or revoke integration tokens (API tokens for non-human callers, with a scope and an expiry)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        issue = actions.add_parser("issue", help="Issue a token and print it (it is shown only once).")
        issue.add_argument("name", help="The integration's name, e.g. monitoring or crm-sync.")
        issue.add_argument("--scope", required=True, choices=[scope.value for scope in Scope])
        issue.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"Lifetime (default {DEFAULT_DAYS}).")
        actions.add_parser("list", help="Every token, with its scope, state and expiry.")
        revoke = actions.add_parser("revoke", help="Revoke a token now.")
        revoke.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _issue(self, options: dict[str, Any]) -> None:
        if options["days"] < 1:
            raise CommandError("--days: a token lives at least one day.")
        try:
            row, token = integration_token_issue(
                name=options["name"],
                scope=options["scope"],
                expires_at=timezone.now() + timedelta(days=options["days"]),
            )
        except InvalidInput as exc:
            messages = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.errors.items())
            raise CommandError(messages) from None
        self.stderr.write(
            f"Issued {row.name} ({row.scope}), expires {_when(row.expires_at)}; the token, shown only now:"
        )
        self.stdout.write(token)

    def _list(self, options: dict[str, Any]) -> None:
        now = timezone.now()
        for row in IntegrationToken.objects.all():
            state = "revoked" if row.revoked_at else "expired" if row.expires_at <= now else "live"
            used = _when(row.last_used_at) if row.last_used_at else "never used"
            self.stdout.write(f"{row.name}\t{row.scope}\t{state}\texpires {_when(row.expires_at)}\t{used}")

    def _revoke(self, options: dict[str, Any]) -> None:
        row = IntegrationToken.objects.filter(name__iexact=options["name"]).first()
        if row is None:
            raise CommandError(f"No integration token is named {options['name']!r} (see `integration_token list`).")
        if not integration_token_revoke(row):
            raise CommandError(f"{row.name} was revoked already, at {_when(row.revoked_at)}.")
        self.stdout.write(self.style.SUCCESS(f"Revoked {row.name}: its next request is refused."))


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "-"
