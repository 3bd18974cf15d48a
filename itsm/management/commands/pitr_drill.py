"""`python manage.py pitr_drill`: a point-in-time recovery drill now; prints the RPO and RTO, exit 1 on failure."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from itsm.backup.base import BackupError
from itsm.models import RecoveryDrill
from itsm.services.pitr import pitr_drill


class Command(BaseCommand):
    help = (
        "Write a row, note the time, write another, restore the pgBackRest repository to that time into a "
        "throw-away cluster, and check that only the first row is there. Records the drill with its RPO and RTO."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")

        try:
            drill = pitr_drill(trigger=RecoveryDrill.Trigger.MANUAL, progress=progress)
        except BackupError as exc:
            raise CommandError(f"PITR drill not run: {exc}") from exc
        if drill.status != RecoveryDrill.Status.SUCCEEDED:
            raise CommandError(f"PITR drill #{drill.pk} FAILED: {drill.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"PITR drill #{drill.pk} passed: RPO {drill.rpo_seconds:.1f} s, RTO {drill.rto_seconds:.1f} s "
                f"(backup {drill.backup_label}, {drill.restored_tables} tables, {drill.restored_rows} rows)"
            )
        )
