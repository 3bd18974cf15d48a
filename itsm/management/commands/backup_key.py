"""`python manage.py backup_key --generate`: a new key for BACKUP_ENCRYPTION_KEY; without it, the public half
(age1…) of each configured key, the current one first, so an operator can tell which key opens which archive."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.backup.configured import decryption_keys, encryption_key
from itsm.backup.encryption import KeyInvalid, generate_key, recipient_of


class Command(BaseCommand):
    help = "Print a new backup encryption key (--generate), or the recipients (age1…) of the configured keys."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--generate", action="store_true", help="Print a new AGE-SECRET-KEY-1… key.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            self.stdout.write(generate_key())
            return
        try:
            current, keys = encryption_key(), decryption_keys()
        except KeyInvalid as exc:
            raise CommandError(str(exc)) from exc
        if current is None:
            self.stdout.write("BACKUP_ENCRYPTION_KEY is not set: new archives are written in the clear")
        else:
            self.stdout.write(f"current   {recipient_of(current)}")
        for key in keys[1 if current is not None else 0 :]:
            self.stdout.write(f"fallback  {recipient_of(key)}")
