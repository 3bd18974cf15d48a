"""`manage.py migrate --noinput`, one process at a time.

`docker compose up -d --scale backend=3` starts three backends that each migrate on start; a PostgreSQL
advisory lock makes them take turns, so the second and third find nothing left to do instead of failing on a
half-created table.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

# Run as `python docker/migrate.py` from the project root: make the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Any constant; it only has to be the same in every replica.
MIGRATION_LOCK = 4_157_243_001


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itsm_project.settings")
    django.setup()

    from django.core.management import call_command
    from django.db import connection

    from itsm import databases

    if connection.vendor != "postgresql":
        call_command("migrate", interactive=False)
        return 0
    if databases.is_direct():
        # Behind PgBouncer in transaction pooling a session lock must be taken past it (lock and unlock could
        # otherwise land on two server connections, leaving the lock held for good); the direct session has no
        # statement timeout to lift.
        databases.session_fetchone("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        try:
            call_command("migrate", interactive=False)
        finally:
            databases.session_fetchone("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
        return 0
    with connection.cursor() as cursor:
        # Waiting for another replica's migration must not hit ITSM_DB_STATEMENT_TIMEOUT_MS.
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        cursor.execute("RESET statement_timeout")
    try:
        call_command("migrate", interactive=False)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
    return 0


if __name__ == "__main__":
    sys.exit(main())
