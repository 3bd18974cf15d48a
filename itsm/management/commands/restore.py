"""`python manage.py restore BACKUP_ID_OR_FILE --yes`: the manual's restore procedure, in read-only mode."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.backup.base import BackupError
from itsm.services.restore import restore_run


class Command(BaseCommand):
    help = (
        "Restore a backup (by id or file) over the live system. The API answers writes with 503 meanwhile; a "
        "database is restored into a new database, checked, swapped in (the old one is kept), migrated and "
        "checked. Refuses without --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", metavar="BACKUP_ID_OR_FILE")
        parser.add_argument("--yes", action="store_true", help="Confirm that the live data is to be replaced.")
        parser.add_argument(
            "--redis-db", type=int, default=None, help="Redis backups: restore only this database number."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["yes"]:
            raise CommandError(
                f"restore replaces the live data with backup {options['source']}: the API goes read-only while it "
                "runs. Run again with --yes to go ahead."
            )
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")

        try:
            result = restore_run(options["source"], redis_db=options["redis_db"], progress=progress)
        except BackupError as exc:
            raise CommandError(f"restore failed: {exc}") from exc
        kept = f"; the previous content is kept as {result['previous']}" if result.get("previous") else ""
        self.stdout.write(self.style.SUCCESS(f"restored {result['kind']} from {result['source']}{kept}"))
