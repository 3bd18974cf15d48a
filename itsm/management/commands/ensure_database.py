"""`python manage.py ensure_database`: create the PostgreSQL database DATABASE_URL names when it does not exist yet,
so that `make run` on a new server migrates instead of ending in a traceback. When the server does not let this
user create it, one line says what to run instead. SQLite needs nothing: its file is created on first use."""

from __future__ import annotations

import shlex
from typing import Any

import psycopg2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg2 import errors, sql

from itsm.backup.postgres import connection_params
from itsm.databases import direct_settings

# The server's own database, there on every PostgreSQL installation: where CREATE DATABASE is sent from.
MAINTENANCE_DATABASE = "postgres"
APPLICATION_NAME = "itsm-ensure-database"
SUPERUSER = "postgres"


def one_line(error: Exception) -> str:
    """libpq's message, which spreads over several lines (`… failed: Connection refused` / `Is the server …`)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def createdb_command(params: dict[str, Any], *, as_superuser: bool = False) -> str:
    """The createdb line for this database; `as_superuser` when its own user may not create databases."""
    words = ["createdb"]
    for flag, key in (("-h", "host"), ("-p", "port")):
        if params.get(key):
            words += [flag, str(params[key])]
    user = str(params.get("user") or "")
    if as_superuser and user != SUPERUSER:
        words += ["-U", SUPERUSER] + (["-O", user] if user else [])
    elif user:
        words += ["-U", user]
    return shlex.join([*words, params["dbname"]])


class Command(BaseCommand):
    help = "Create the PostgreSQL database that DATABASE_URL names if it does not exist (make run does this)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DATABASE_IS_POSTGRES:
            return
        # PostgreSQL itself: a pooler would remember a failed login to a database not created yet (and refuse the
        # next one for server_login_retry seconds).
        database = direct_settings()
        params = {**connection_params(database), "application_name": APPLICATION_NAME}
        name = params["dbname"]
        try:
            psycopg2.connect(**params).close()
            return
        except psycopg2.OperationalError as exc:
            problem = one_line(exc)
        try:
            server = psycopg2.connect(**{**params, "dbname": MAINTENANCE_DATABASE})
        except psycopg2.OperationalError:
            # The server is down, refuses this user, or keeps its maintenance database from it.
            if "does not exist" in problem:
                raise CommandError(f"{problem}; create it with: {createdb_command(params)}") from None
            raise CommandError(f"cannot connect to the database of DATABASE_URL: {problem}") from None
        server.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with server.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
                if cursor.fetchone() is not None:
                    # It exists, so something else failed (CONNECT privilege, pg_hba.conf): say what.
                    raise CommandError(f"cannot connect to the database of DATABASE_URL: {problem}")
                try:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except errors.DuplicateDatabase:
                    return  # another `make run` created it a moment ago
                except psycopg2.Error as exc:
                    raise CommandError(
                        f'database "{name}" does not exist and user "{params.get("user", "")}" cannot create it '
                        f"({one_line(exc)}); create it with: {createdb_command(params, as_superuser=True)}"
                    ) from None
        finally:
            server.close()
        self.stdout.write(f'Created the database "{name}" (DATABASE_URL named a database that did not exist).')
