"""PostgreSQL: `pg_dump -Fc` of a snapshot exported by a REPEATABLE READ transaction that, in the same snapshot,
counts and hashes every table (the manifest); verification restores into a scratch database and compares."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ
from psycopg2.extensions import connection as PgConnection

from itsm.backup.base import BackupError, Child, Progress, VerificationFailed, compare_tables, run_child

logger = logging.getLogger(__name__)

SCRATCH_PREFIX = "itsm_backup_scratch_"
RESTORE_TIMEOUT_BASE = 120.0
RESTORE_TIMEOUT_PER_MB = 10.0
DROP_TIMEOUT_SECONDS = 120
MAINTENANCE_DATABASES = ("postgres", "template1")
# Every connection of a backup, verification or restore, pg_dump's and pg_restore's included, carries this name in
# pg_stat_activity, so that an operator ending long-running queries can leave them alone (docs/operations.md).
APPLICATION_NAME = "itsm-backup"

# Row text depends on session settings (time zone, date and interval styles, float digits, bytea format):
# the manifest and every check of it run with the same ones, so equal data always hashes equally.
STABLE_SESSION = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C'; "
    "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0"
)

# Ordinary tables outside the system schemas, without those of extensions (pg_dump leaves their rows out).
TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

# The content hash is the sum of the first 64 bits of each row's md5: independent of row order, so no sort and
# no giant string; md5 of the row's text is the same on every server version and architecture.
TABLE_DIGEST = (
    "SELECT count(*), coalesce(sum(('x' || left(md5(ROW(r.*)::text), 16))::bit(64)::bigint), 0)::text FROM {} AS r"
)

# The schema, so that a restore that silently lost an index, a constraint or a trigger does not pass. Object names
# and shapes only: PostgreSQL may print an expression differently after a dump and restore (a partial index's
# WHERE clause, a CHECK), so definitions as text are not compared.
SCHEMA_PARTS = {
    "columns": """
        SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default IS NOT NULL
        FROM information_schema.columns
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\\_%'
        ORDER BY 1, 2, 3""",
    "indexes": """
        SELECT n.nspname, t.relname, c.relname, i.indisunique, i.indisprimary, i.indnkeyatts, am.amname,
               i.indpred IS NOT NULL, i.indexprs IS NOT NULL
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = c.relam
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1, 2, 3""",
    "constraints": """
        SELECT n.nspname, c.conrelid::regclass::text, c.conname, c.contype, c.confrelid::regclass::text
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1, 2, 3""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, t.tgtype, t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1, 2""",
    "views": """
        SELECT schemaname, viewname FROM pg_views
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg\\_%'
        ORDER BY 1, 2""",
}

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def connection_params(database: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    """psycopg2 keyword arguments for a Django DATABASES entry (optionally another database on the server)."""
    options = database.get("OPTIONS", {}) or {}
    params: dict[str, Any] = {
        "dbname": name or database["NAME"],
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "connect_timeout": options.get("connect_timeout", 10),
        "application_name": APPLICATION_NAME,
    }
    if options.get("sslmode"):
        params["sslmode"] = options["sslmode"]
    return {key: value for key, value in params.items() if value is not None}


def child_env(params: dict[str, Any]) -> dict[str, str]:
    """The environment for pg_dump and pg_restore: the password never appears on a command line."""
    names = {
        "dbname": "PGDATABASE",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "host": "PGHOST",
        "port": "PGPORT",
        "connect_timeout": "PGCONNECT_TIMEOUT",
        "sslmode": "PGSSLMODE",
        "application_name": "PGAPPNAME",
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update({names[key]: str(value) for key, value in params.items() if key in names})
    return env


def connect(params: dict[str, Any], *, autocommit: bool = False) -> PgConnection:
    try:
        conn = psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        raise BackupError(f"cannot connect to PostgreSQL database {params.get('dbname')!r}: {exc}".strip()) from exc
    conn.autocommit = autocommit
    return conn


def tool(name: str, bin_dir: str = "") -> str:
    return str(Path(bin_dir) / name) if bin_dir else name


def tool_version(path: str) -> tuple[int, int]:
    """(major, minor) of pg_dump or pg_restore, from `--version`."""
    try:
        result = subprocess.run(  # noqa: S603  (our own binary path and a fixed argument)
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise BackupError(f"{path} is not installed (set BACKUP_PG_BIN_DIR to its directory).") from None
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise BackupError(f"cannot read the version of {path}: {(result.stdout + result.stderr)[:200]!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def check_tool_version(tool_major: int, server_major: int, *, name: str) -> None:
    """pg_dump must be the server's major version or newer; an older one is refused, never a silent bad file."""
    if tool_major < server_major:
        raise BackupError(
            f"{name} {tool_major} is older than the PostgreSQL server ({server_major}): install the "
            f"PostgreSQL {server_major} client tools and point BACKUP_PG_BIN_DIR at them."
        )


def server_major(cursor: Any) -> tuple[int, str]:
    cursor.execute("SELECT current_setting('server_version_num')::int, current_setting('server_version')")
    number, text = cursor.fetchone()
    return number // 10000, str(text).split()[0]


def table_manifest(cursor: Any, *, progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """{"schema.table": {"rows": n, "hash": h}} for every table, read in the cursor's transaction."""
    cursor.execute(TABLES)
    tables = cursor.fetchall()
    result: dict[str, dict[str, Any]] = {}
    for schema, table in tables:
        cursor.execute(sql.SQL(TABLE_DIGEST).format(sql.Identifier(schema, table)))
        rows, digest = cursor.fetchone()
        result[f"{schema}.{table}"] = {"rows": int(rows), "hash": str(digest)}
    if progress:
        progress(f"manifest: {len(result)} tables, {sum(t['rows'] for t in result.values())} rows")
    return result


def schema_manifest(cursor: Any) -> dict[str, str]:
    """{"columns": md5, "indexes": md5, ...}: a fingerprint of each part of the schema."""
    result = {}
    for part, query in SCHEMA_PARTS.items():
        cursor.execute(query)
        digest = hashlib.md5(usedforsecurity=False)
        for row in cursor.fetchall():
            digest.update(repr(tuple(row)).encode())
        result[part] = digest.hexdigest()
    return result


def compare_schema(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    return [f"the restored {part} differ from the manifest" for part in expected if expected[part] != actual.get(part)]


class PostgresDumper:
    """The database kind on PostgreSQL."""

    extension = ".dump"

    def __init__(self, database: dict[str, Any], *, bin_dir: str = "", restore_jobs: int = 1) -> None:
        self.params = connection_params(database)
        self.bin_dir = bin_dir
        self.restore_jobs = max(1, restore_jobs)
        # Scratch databases carry a tag of the live database, so that two platforms on one server (staging and
        # production, or parallel test runs) never clean up each other's scratch databases.
        source = f"{self.params.get('host', '')}:{self.params.get('port', '')}/{self.params['dbname']}"
        self.tag = hashlib.sha256(source.encode()).hexdigest()[:6]

    # --- dump ------------------------------------------------------------------------------------------------
    def dump(self, target: Path, *, progress: Progress) -> dict[str, Any]:
        pg_dump = tool("pg_dump", self.bin_dir)
        dump_version = tool_version(pg_dump)
        conn = connect(self.params)
        child: Child | None = None
        try:
            conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
            with conn.cursor() as cursor:
                cursor.execute(STABLE_SESSION)
                major, server_version = server_major(cursor)
                check_tool_version(dump_version[0], major, name="pg_dump")
                cursor.execute("SELECT pg_export_snapshot(), now()")
                snapshot, snapshot_at = cursor.fetchone()
                progress(f"pg_dump {dump_version[0]}.{dump_version[1]} of server {server_version}, snapshot {snapshot}")
                # pg_dump imports the snapshot while this transaction holds it open; meanwhile the manifest is
                # computed from the very same snapshot, on the other core.
                child = Child(
                    [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={target}", "--no-password"],
                    env=child_env(self.params),
                )
                tables = table_manifest(cursor, progress=progress)
                schema = schema_manifest(cursor)
                child.wait(what="pg_dump")
                child = None
        finally:
            if child is not None:
                child.stop()
            conn.rollback()
            conn.close()
        return {
            "format": "pg_dump-custom",
            "server_version": server_version,
            "pg_dump_version": f"{dump_version[0]}.{dump_version[1]}",
            "snapshot": snapshot,
            "snapshot_at": snapshot_at.isoformat(),
            "tables": tables,
            "schema": schema,
        }

    # --- restore and verify ----------------------------------------------------------------------------------
    def restore_into(self, archive: Path, database: str) -> float:
        """pg_restore the archive into an existing, empty database; returns the seconds it took."""
        started = time.perf_counter()
        command = [
            tool("pg_restore", self.bin_dir),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--no-password",
            f"--dbname={database}",
        ]
        if self.restore_jobs > 1:
            command.append(f"--jobs={self.restore_jobs}")
        command.append(str(archive))
        # pg_restore can spin forever on some damaged archives (seen on PostgreSQL 15): a limit far above the
        # normal time (about 0.6 s per MB of archive here) turns that into a failure.
        timeout = RESTORE_TIMEOUT_BASE + RESTORE_TIMEOUT_PER_MB * archive.stat().st_size / 1e6
        run_child(command, env=child_env({**self.params, "dbname": database}), what="pg_restore", timeout=timeout)
        return time.perf_counter() - started

    def manifest_of(self, database: str) -> dict[str, Any]:
        """The tables and schema parts of a database, as the manifest records them."""
        conn = connect({**self.params, "dbname": database})
        try:
            conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
            with conn.cursor() as cursor:
                cursor.execute(STABLE_SESSION)
                return {"tables": table_manifest(cursor), "schema": schema_manifest(cursor)}
        finally:
            conn.rollback()
            conn.close()

    def check_restored(self, database: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Compare a restored database with the manifest; raises VerificationFailed on any difference."""
        found = self.manifest_of(database)
        tables = found["tables"]
        problems = compare_tables(manifest.get("tables", {}), tables)
        problems += compare_schema(manifest.get("schema", {}), found["schema"])
        if problems:
            raise VerificationFailed(
                f"the restore does not match the manifest: {'; '.join(problems[:5])}",
                {"problems": problems[:50]},
            )
        return {"tables": len(tables), "rows": sum(t["rows"] for t in tables.values())}

    def verify(self, archive: Path, manifest: dict[str, Any], *, label: str, progress: Progress) -> dict[str, Any]:
        with self.scratch_database(label) as scratch:
            progress(f"restoring into scratch database {scratch}")
            try:
                restore_seconds = self.restore_into(archive, scratch)
            except BackupError as exc:
                raise VerificationFailed(f"the archive does not restore: {exc}") from exc
            result = self.check_restored(scratch, manifest)
        progress(f"restore matches the manifest: {result['tables']} tables, {result['rows']} rows")
        return {**result, "restore_seconds": round(restore_seconds, 3), "scratch_database": scratch}

    # --- databases on the server -----------------------------------------------------------------------------
    def maintenance_connection(self) -> PgConnection:
        last: BackupError | None = None
        for name in MAINTENANCE_DATABASES:
            try:
                return connect({**self.params, "dbname": name}, autocommit=True)
            except BackupError as exc:
                last = exc
        assert last is not None
        raise last

    def create_database(self, name: str) -> None:
        with contextlib.closing(self.maintenance_connection()) as conn, conn.cursor() as cursor:
            try:
                cursor.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
            except psycopg2.Error as exc:
                raise BackupError(
                    f"cannot create database {name!r} (the database user needs CREATEDB): {exc}".strip()
                ) from exc

    def drop_database(self, name: str) -> None:
        """DROP DATABASE … WITH (FORCE), given up after DROP_TIMEOUT: on PostgreSQL 15 a DROP DATABASE waits for
        every backend of the server to acknowledge it, and a backend stuck in COPY for a hung client never does."""
        with contextlib.closing(self.maintenance_connection()) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{DROP_TIMEOUT_SECONDS}s"])
            try:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            except psycopg2.Error as exc:
                raise BackupError(f"cannot drop database {name!r}: {exc}".strip()) from exc

    def drop_scratch_databases(self, label: str) -> list[str]:
        """Drop the scratch databases a crashed run of `label` left behind."""
        prefix = f"{SCRATCH_PREFIX}{self.tag}_{label}_"
        with contextlib.closing(self.maintenance_connection()) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix])
            names = [row[0] for row in cursor.fetchall()]
        for name in names:
            self.drop_database(name)
        return names

    @contextlib.contextmanager
    def scratch_database(self, label: str) -> Iterator[str]:
        """A fresh database named itsm_backup_scratch_<tag>_<label>_<random>, dropped afterwards whatever happens."""
        name = f"{SCRATCH_PREFIX}{self.tag}_{label}_{secrets.token_hex(3)}"[:63]
        self.create_database(name)
        try:
            yield name
        finally:
            try:
                self.drop_database(name)
            except BackupError as exc:
                # The check itself is done; the next takeover of this backup, or an operator, drops it.
                logger.error("scratch database %s was left behind: %s", name, exc)

    def swap_in(self, *, live: str, replacement: str, previous: str) -> None:
        """Make `replacement` the live database and keep the old one as `previous`: connections to the live
        database are refused and ended first, so the renames do not race with reconnecting clients."""
        with contextlib.closing(self.maintenance_connection()) as conn, conn.cursor() as cursor:
            cursor.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(live)))
            try:
                for _ in range(20):
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname IN (%s, %s) AND pid <> pg_backend_pid()",
                        [live, replacement],
                    )
                    try:
                        cursor.execute(
                            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                                sql.Identifier(live), sql.Identifier(previous)
                            )
                        )
                        break
                    except psycopg2.errors.ObjectInUse:
                        time.sleep(0.25)
                else:
                    raise BackupError(f"database {live!r} is still in use; stop the API and workers and retry")
            except BaseException:
                cursor.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(live)))
                raise
            cursor.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(replacement), sql.Identifier(live))
            )
            # Clients connect by the live name only, so the kept database may accept connections again (to be
            # inspected, or renamed back).
            cursor.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(previous)))

    def applied_migrations(self, database: str) -> set[tuple[str, str]]:
        """(app, name) of the migrations recorded in a database; empty without a django_migrations table."""
        connection = connect({**self.params, "dbname": database}, autocommit=True)
        with contextlib.closing(connection) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return set()
            cursor.execute("SELECT app, name FROM django_migrations")
            return {(str(app), str(name)) for app, name in cursor.fetchall()}
