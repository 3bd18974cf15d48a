"""`python manage.py pitr_backup [--type full|diff]`: a pgBackRest backup now (Beat: full weekly, diff daily)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.backup.base import BackupError
from itsm.services.pitr import pitr_backup


class Command(BaseCommand):
    help = "Take a pgBackRest backup of the archived cluster now (a full one, unless --type diff)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", choices=["full", "diff"], default="full", dest="kind")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")

        try:
            result = pitr_backup(kind=options["kind"], progress=progress)
        except BackupError as exc:
            raise CommandError(f"pgBackRest backup failed: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(f"pgBackRest {result['type']} backup {result['label']}: {result['size_bytes']} bytes")
        )
