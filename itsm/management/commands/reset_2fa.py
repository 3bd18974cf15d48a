from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.services.two_factor import second_factor_reset
from itsm.services.users import user_by_username


class Command(BaseCommand):
    help = (
        "Remove a user's second factor (authenticator app and recovery codes), e.g. after a lost phone: they sign in "
        "with their password alone, then set up a new app (docs/runbooks/lost-second-factor.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        if user is None:
            raise CommandError(f"There is no user named {options['username']!r}: nothing was reset.")
        removed = second_factor_reset(user=user, by="manage.py reset_2fa")
        if not removed:
            self.stdout.write(f"{user.username} had no second factor: nothing to reset.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Reset the second factor of {user.username}: they sign in with their password alone and set up a "
                "new authenticator app at /admin/2fa/."
            )
        )
