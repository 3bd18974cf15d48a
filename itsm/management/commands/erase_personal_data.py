"""Answer an erasure request: pseudonymise a person everywhere (docs/runbooks/personal-data-request.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.queries.privacy import PersonNotFound, person_find
from itsm.services.privacy import COMMENTS, PersonalDataRefused, personal_data_erase


class Command(BaseCommand):
    help = (
        "Erase a person: name and e-mail pseudonymised everywhere, sign-in removed, attachments deleted, comments "
        "kept or blanked. Cannot be undone; export first (export_personal_data)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("person", help="The person's user name or e-mail address.")
        parser.add_argument(
            "--comments",
            required=True,
            choices=COMMENTS,
            help="keep: their comments' text stays (names and addresses in it replaced); blank: the text is removed.",
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = person_find(options["person"])
        except PersonNotFound as exc:
            raise CommandError(f"{exc} Nothing was erased.") from None
        username = user.get_username()
        if not options["yes"]:
            answer = input(f"Erase {username} <{user.email}> for good (comments: {options['comments']})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Not confirmed: nothing was erased.")
        try:
            erasure = personal_data_erase(user=user, comments=options["comments"], source="command")
        except PersonalDataRefused as exc:
            raise CommandError(f"{exc} Nothing was erased.") from None
        if erasure.already_erased:
            self.stdout.write(f"{username} was erased before: nothing to do.")
            return
        done = ", ".join(f"{key}: {value}" for key, value in sorted(erasure.counts.items()) if value)
        self.stdout.write(self.style.SUCCESS(f"Erased {username}: now {erasure.pseudonym}. {done}"))
