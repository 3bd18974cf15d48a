"""`python manage.py restore BACKUP_ID_OR_FILE --yes`: the manual's restore procedure, in read-only mode.
`python manage.py restore --to-time "2026-12-03 14:05:00+00"`: a point-in-time restore with pgBackRest into a new
data directory, replayed and checked, then the runbook's steps to swap it in."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from itsm.backup.base import BackupError
from itsm.services.pitr import pitr_restore_to_time
from itsm.services.restore import restore_run

SWAP_STEPS = """To put it into service (docs/runbooks/backup-restore.md#swap-the-restored-cluster-in):
  1. .venv/bin/python manage.py read_only_mode on --reason "point-in-time restore"; stop Beat and the workers
  2. stop PostgreSQL, then: mv "$PGDATA" "$PGDATA.before_pitr_{stamp}" && mv {data_dir} "$PGDATA"
  3. start PostgreSQL; then: pgbackrest --stanza={stanza} check && pgbackrest --stanza={stanza} --type=full backup
  4. .venv/bin/python manage.py migrate && .venv/bin/python manage.py check
  5. .venv/bin/python manage.py read_only_mode off; start the workers and Beat"""


class Command(BaseCommand):
    help = (
        "Restore a backup (by id or file) over the live system. The API answers writes with 503 meanwhile; a "
        "database is restored into a new database, checked, swapped in (the old one is kept), migrated and "
        "checked. Refuses without --yes. With --to-time instead: restore the pgBackRest repository to that moment "
        "into a new data directory, replay, check, and print the steps that swap it in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", metavar="BACKUP_ID_OR_FILE", nargs="?")
        parser.add_argument("--yes", action="store_true", help="Confirm that the live data is to be replaced.")
        parser.add_argument(
            "--redis-db", type=int, default=None, help="Redis backups: restore only this database number."
        )
        parser.add_argument(
            "--to-time",
            metavar="TIMESTAMP",
            help='Point-in-time restore to this moment, with its offset: "2026-12-03 14:05:00+00".',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")

        if options["to_time"] is not None:
            if options["source"]:
                raise CommandError("give either a backup id or file, or --to-time, not both")
            self._to_time(_moment(options["to_time"]), progress)
            return
        if not options["source"]:
            raise CommandError("give a backup id or file to restore, or --to-time TIMESTAMP")
        if not options["yes"]:
            raise CommandError(
                f"restore replaces the live data with backup {options['source']}: the API goes read-only while it "
                "runs. Run again with --yes to go ahead."
            )
        try:
            result = restore_run(options["source"], redis_db=options["redis_db"], progress=progress)
        except BackupError as exc:
            raise CommandError(f"restore failed: {exc}") from exc
        kept = f"; the previous content is kept as {result['previous']}" if result.get("previous") else ""
        self.stdout.write(self.style.SUCCESS(f"restored {result['kind']} from {result['source']}{kept}"))

    def _to_time(self, target: datetime, progress: Any) -> None:
        try:
            result = pitr_restore_to_time(target=target, progress=progress)
        except BackupError as exc:
            raise CommandError(f"restore --to-time failed: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"restored to {result['target']} from pgBackRest backup {result['backup_label']} into "
                f"{result['data_dir']}: {result['tables']} tables, {result['rows']} rows, {result['seconds']} s"
            )
        )
        stamp = result["data_dir"].rsplit("restore_", 1)[-1]
        self.stdout.write(
            SWAP_STEPS.format(stamp=stamp, data_dir=result["data_dir"], stanza=settings.BACKUP_PITR_STANZA)
        )


def _moment(text: str) -> datetime:
    try:
        moment = parse_datetime(text.strip())
    except ValueError as exc:
        raise CommandError(f"--to-time {text!r} is not a valid time: {exc}") from None
    if moment is None:
        raise CommandError(f'--to-time {text!r} is not a time: give it as "2026-12-03 14:05:00+00"')
    if moment.tzinfo is None:
        raise CommandError(f'--to-time {text!r} has no UTC offset: add one, as in "2026-12-03 14:05:00+00"')
    return moment
