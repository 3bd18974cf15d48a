"""`python manage.py upgrade [--plan-only] [--previous-image IMAGE] [--rollback]`: a release's database upgrade.

The migration plan first (each migration, its operations, the irreversible ones flagged), then a verified
pre-upgrade backup, then the migrations. When one fails: the way back, exactly, and exit 1 (with --rollback, the
pre-upgrade backup restored first). docs/runbooks/upgrade.md is the procedure around it.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.exceptions import InvalidInput
from itsm.services.upgrade import (
    UpgradeFailed,
    pre_upgrade_backups,
    upgrade_backup_remove,
    upgrade_plan,
    upgrade_plan_text,
    upgrade_run,
)


class Command(BaseCommand):
    help = (
        "Upgrade the database to this release: print the migration plan, take a verified pre-upgrade backup, "
        "apply the migrations; when one fails, print the way back (the backup's id, the restore command, the "
        "previous image) and exit 1. --plan-only prints the plan and exits 1 when migrations are pending."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--plan-only",
            "--check",
            action="store_true",
            dest="plan_only",
            help="Print the migration plan and change nothing; exit 1 when there are migrations to apply.",
        )
        parser.add_argument(
            "--previous-image",
            default="",
            metavar="IMAGE",
            help="The image this installation runs now (e.g. itsm-api:1.4.2), named in the way back.",
        )
        parser.add_argument(
            "--rollback",
            action="store_true",
            help="When a migration fails, restore the pre-upgrade backup at once (without re-applying migrations).",
        )
        parser.add_argument("--list-backups", action="store_true", help="List the pre-upgrade backups kept.")
        parser.add_argument(
            "--remove-backup",
            type=int,
            metavar="ID",
            help="Delete a pre-upgrade backup's copies (retention never does) once the release has proven itself.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["remove_backup"] is not None:
            try:
                backup = upgrade_backup_remove(backup_id=options["remove_backup"])
            except InvalidInput as exc:
                raise CommandError(" ".join(m for messages in exc.errors.values() for m in messages)) from exc
            self.stdout.write(self.style.SUCCESS(f"pre-upgrade backup #{backup.pk} removed (its record stays)"))
            return
        if options["list_backups"]:
            for row in pre_upgrade_backups():
                where = ", ".join(place for place in ("local", "s3") if row[place])
                self.stdout.write(f"#{row['id']}  {row['created_at']:%Y-%m-%d %H:%M:%S}  {row['status']}  {where}")
            return
        if options["plan_only"]:
            plan = upgrade_plan()
            self.stdout.write(upgrade_plan_text(plan))
            if plan:
                raise CommandError(f"{len(plan)} migrations to apply: run `python manage.py upgrade` to apply them")
            return
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")

        try:
            result = upgrade_run(
                previous_image=options["previous_image"],
                rollback=options["rollback"],
                stdout=self.stdout._out,  # migrate wraps it itself; a second wrapper would break its lines
                progress=progress,
            )
        except UpgradeFailed as exc:
            if exc.way_back:
                self.stdout.write(exc.way_back)
            raise CommandError(f"upgrade failed: {exc}") from exc
        if result.applied:
            self.stdout.write(
                self.style.SUCCESS(
                    f"upgraded: {len(result.plan)} migrations applied; the pre-upgrade backup #{result.backup_id} is "
                    f"kept until `python manage.py upgrade --remove-backup {result.backup_id}`"
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS("nothing to upgrade: the database is at this release's migrations"))
