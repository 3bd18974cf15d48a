"""The manual's weekly `VACUUM ANALYZE` (PostgreSQL), or its SQLite equivalent in the embedded mode."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import connection

from itsm import databases

logger = logging.getLogger(__name__)


class VacuumInTransaction(RuntimeError):
    """VACUUM cannot run inside a transaction block (PostgreSQL and SQLite alike)."""


def database_vacuum() -> dict[str, Any]:
    """Reclaim dead rows and refresh the planner's statistics of the whole database; returns what it did.

    Runs on the connection in autocommit mode, outside any transaction. PostgreSQL's statement timeout (a guard
    for API queries) is lifted for the VACUUM only: on a large database it takes minutes."""
    if connection.in_atomic_block:
        raise VacuumInTransaction("VACUUM must run outside a transaction (autocommit), not inside atomic().")
    started = time.perf_counter()
    # Behind a transaction pooler, SET and VACUUM could land on different server sessions: go past it.
    session = databases.direct_cursor() if databases.is_direct() else connection.cursor()
    with session as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
            before = cursor.fetchone()[0]
            cursor.execute("SET statement_timeout = 0")
            try:
                cursor.execute("VACUUM (ANALYZE)")
            finally:
                cursor.execute("RESET statement_timeout")
            cursor.execute("SELECT pg_database_size(current_database())")
            after = cursor.fetchone()[0]
            statements = ["VACUUM (ANALYZE)"]
        else:
            before = _sqlite_size(cursor)
            statements = ["VACUUM", "ANALYZE", "PRAGMA optimize"]
            for statement in statements:
                cursor.execute(statement)
            after = _sqlite_size(cursor)
    seconds = round(time.perf_counter() - started, 3)
    logger.info("%s on %s: %s → %s bytes in %.1f s", "; ".join(statements), connection.vendor, before, after, seconds)
    return {
        "engine": connection.vendor,
        "statements": statements,
        "size_before_bytes": before,
        "size_after_bytes": after,
        "seconds": seconds,
    }


def _sqlite_size(cursor: Any) -> int:
    cursor.execute("PRAGMA page_count")
    pages = cursor.fetchone()[0]
    cursor.execute("PRAGMA page_size")
    return int(pages * cursor.fetchone()[0])
