from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.exceptions import InvalidInput
from itsm.roles import Role
from itsm.services.users import user_upsert


class Command(BaseCommand):
    help = "Create a user, or update an existing one, with exactly one role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--password", help="Set this password (checked against the password rules).")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user, created = user_upsert(
                username=options["username"], role=options["role"], password=options["password"], email=options["email"]
            )
        except InvalidInput as exc:
            messages = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.errors.items())
            raise CommandError(messages) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {user.username} as {options['role']}."))
        if not user.has_usable_password():
            self.stdout.write(
                f"{user.username} has no password yet: run this again with --password to let them log in."
            )
