"""Where database work connects when a connection pooler stands in front of PostgreSQL.

Behind PgBouncer in transaction pooling (ITSM_DB_TRANSACTION_POOLING), each transaction may run on another server
connection: what lives in a session does not hold there. So session-level work connects past the pooler, to
ITSM_DIRECT_DATABASE_URL: the advisory locks of backups and deliveries, VACUUM (which lifts the statement timeout
for its session), pg_dump and pg_restore. The direct URL gives the server and the role; the database name is the
one Django uses (the test database under pytest). Without a direct URL, all of it uses the default connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg2
from django.conf import settings
from django.db import connections

APPLICATION_NAME = "itsm-direct"

_local = threading.local()


def is_direct() -> bool:
    """Whether session-level work has a connection of its own past the pooler (PostgreSQL only)."""
    return bool(settings.ITSM_DIRECT_DATABASE) and connections["default"].vendor == "postgresql"


def direct_settings() -> dict[str, Any]:
    """Django's settings of the default database, with the direct server and role when one is configured."""
    return {**connections["default"].settings_dict, **settings.ITSM_DIRECT_DATABASE}


def _params() -> dict[str, Any]:
    database = direct_settings()
    return {
        "dbname": database["NAME"],
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "connect_timeout": (database.get("OPTIONS") or {}).get("connect_timeout", 10),
        "application_name": APPLICATION_NAME,
    }


def _session_connection() -> Any:
    conn = getattr(_local, "connection", None)
    if conn is None or conn.closed:
        conn = psycopg2.connect(**_params())
        conn.autocommit = True
        _local.connection = conn
    return conn


def session_fetchone(statement: str, params: list[Any]) -> Any:
    """Run one statement on this thread's direct session (autocommit), a session whose advisory locks PostgreSQL
    drops when the process dies. A session the server ended meanwhile (a restart, pg_terminate_backend) held no
    locks any more: it is opened again and the statement run once more."""
    for retry in (False, True):
        try:
            with _session_connection().cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchone()
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            with contextlib.suppress(psycopg2.Error):
                _local.connection.close()
            if retry:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def direct_cursor() -> Iterator[Any]:
    """A cursor on a fresh direct connection, closed afterwards (for VACUUM and other one-off session work)."""
    conn = psycopg2.connect(**_params())
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()
