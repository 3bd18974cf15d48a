"""`python manage.py backup_verify ID [--source local|s3]`: read a backup in full and restore it into a scratch
database; exit 1 when it does not match its manifest. A copy that cannot be read (S3 not configured, the copy
deleted) is refused before anything starts, so the backup's record stays as it was."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.exceptions import NotReady
from itsm.models import Backup
from itsm.services.backups import backup_verify


class Command(BaseCommand):
    help = "Verify a backup: full read, SHA-256, restore into a scratch database, compare with the manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup_id", type=int, metavar="ID")
        parser.add_argument(
            "--source", choices=["auto", "local", "s3"], default="auto", help="Where to read the archive from."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")

        backup = Backup.objects.filter(pk=options["backup_id"]).first()
        if backup is None:
            raise CommandError(f"there is no backup #{options['backup_id']}")
        source = options["source"]
        if source == "auto":
            source = "local" if backup.has_local_copy else "s3"
        s3_configured = bool(settings.BACKUP_S3_BUCKET)
        problem = backup.unreadable_copy(source, s3_configured=s3_configured)
        # A backup with no copy at all, or not finished, is the service's NotReady, which says so.
        if problem and (backup.has_local_copy or backup.has_s3_copy):
            other = "local" if source == "s3" else "s3"
            usable = backup.unreadable_copy(other, s3_configured=s3_configured) is None
            hint = f"; its {other} copy can be verified with --source {other}" if usable else ""
            raise CommandError(
                f"backup #{backup.pk} cannot be verified from {source}: {problem}. Nothing was changed{hint}."
            )
        try:
            backup = backup_verify(backup_id=backup.pk, source=source, progress=progress)
        except NotReady as exc:
            raise CommandError(str(exc)) from exc
        detail = backup.verification.get(source, {})
        if not backup.verified_ok:
            raise CommandError(f"backup #{backup.pk} FAILED verification: {detail.get('error')}")
        self.stdout.write(
            self.style.SUCCESS(f"backup #{backup.pk} verified from {source} in {detail.get('seconds')} s")
        )
