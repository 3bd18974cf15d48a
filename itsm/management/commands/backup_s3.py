"""`python manage.py backup_s3 list [--kind database] [--newest]` and `python manage.py backup_s3 fetch KEY --to DIR`:
the archives in S3 as a new host sees them, with no backup records yet (docs/runbooks/rebuild-from-s3.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.backup.base import BackupError, StorageUnavailable
from itsm.backup.configured import s3_storage
from itsm.backup.s3 import ARCHIVE_CLASSES
from itsm.models import Backup


class Command(BaseCommand):
    help = (
        "List the archives in the backup bucket (newest first), or download one and check it against the SHA-256 "
        "recorded at upload. Neither needs the database."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="The archives, newest first: key, size, upload time, class.")
        listing.add_argument("--kind", choices=Backup.Kind.values, default="")
        listing.add_argument("--newest", action="store_true", help="Print only the newest archive's key.")
        fetching = actions.add_parser("fetch", help="Download one archive and check its SHA-256.")
        fetching.add_argument("key", metavar="KEY")
        fetching.add_argument("--to", required=True, metavar="DIR", help="An existing directory.")

    def handle(self, *args: Any, **options: Any) -> None:
        s3 = s3_storage()
        if s3 is None:
            raise CommandError("BACKUP_S3_BUCKET is not set: there is no bucket to read")
        try:
            if options["action"] == "list":
                self._list(s3.list_archives(options["kind"]), kind=options["kind"], newest=options["newest"])
            else:
                directory = Path(options["to"])
                if not directory.is_dir():
                    raise CommandError(f"--to {directory}: no such directory")
                path, sha256 = s3.fetch(options["key"], directory)
                self.stdout.write(path.as_posix())
                self.stderr.write(f"downloaded {path.stat().st_size} bytes, sha256 {sha256}")
        except (BackupError, StorageUnavailable) as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, archives: list[dict[str, Any]], *, kind: str, newest: bool) -> None:
        if not archives:
            raise CommandError(f"no {kind + ' ' if kind else ''}archives in the bucket under its prefix")
        if newest:
            readable = [item for item in archives if item["storage_class"] not in ARCHIVE_CLASSES]
            if not readable:
                where = archives[0]["storage_class"]
                raise CommandError(f"every {kind} archive is in {where}: restore one in S3 first")
            self.stdout.write(readable[0]["key"])
            return
        for item in archives:
            uploaded = f"{item['last_modified']:%Y-%m-%d %H:%M:%S}"
            self.stdout.write(f"{item['key']}  {item['size']} bytes  {uploaded}  {item['storage_class']}")
