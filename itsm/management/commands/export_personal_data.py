"""Answer an access request: everything the platform holds about a person, as JSON
(docs/runbooks/personal-data-request.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.queries.privacy import PersonNotFound, person_find, personal_data_export


class Command(BaseCommand):
    help = (
        "Write everything the platform holds about a person (account, tickets, comments, attachments list, "
        "notifications, mail, audit entries) as one JSON document, to standard output or --output FILE."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("person", help="The person's user name or e-mail address.")
        parser.add_argument("--output", help="Write the JSON to this file instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = person_find(options["person"])
        except PersonNotFound as exc:
            raise CommandError(f"{exc} Nothing was exported.") from None
        text = json.dumps(personal_data_export(user), indent=2, ensure_ascii=False)
        if options["output"]:
            Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            self.stderr.write(f"Wrote the personal data of {user.get_username()} to {options['output']}.")
        else:
            self.stdout.write(text)
