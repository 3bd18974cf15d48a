"""`python manage.py backup [--kind database|redis|media] [--tier daily]`: one backup now, with progress."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.exceptions import InvalidInput
from itsm.models import Backup
from itsm.services.backups import backup_create, backup_run


class Command(BaseCommand):
    help = "Take one backup now (dump, store, verify by restoring, copy to S3, apply retention) and show progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", choices=Backup.Kind.values, default=Backup.Kind.DATABASE)
        parser.add_argument("--tier", choices=Backup.Tier.values, default=Backup.Tier.DAILY)

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")

        try:
            backup = backup_create(kind=options["kind"], tier=options["tier"], enqueue=False)
        except InvalidInput as exc:
            raise CommandError(" ".join(message for messages in exc.errors.values() for message in messages)) from exc
        result = backup_run(backup_id=backup.pk, final_attempt=True, progress=progress)
        if result is None:
            raise CommandError(f"backup #{backup.pk} is already being run by another process")
        if result.status != Backup.Status.SUCCEEDED:
            raise CommandError(f"backup #{result.pk} failed: {result.error}")
        where = [f"local {result.local_path}"] + ([f"s3 {result.s3_key}"] if result.s3_key else [])
        self.stdout.write(
            self.style.SUCCESS(
                f"backup #{result.pk} succeeded and verified: {result.size_bytes} bytes, sha256 {result.sha256}, "
                f"{', '.join(where)}"
            )
        )
