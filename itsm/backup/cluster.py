"""A PostgreSQL server on a restored data directory: started on a free loopback port with its socket in the data
directory, waited for until recovery has replayed to its target and promoted it, checked, and stopped by the PID
that started it. `restore --to-time` and the PITR drill use it; nothing here touches the live cluster."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from itsm.backup.pgbackrest import PitrError, chown_for, run_as
from itsm.backup.postgres import TABLES

STOP_TIMEOUT_SECONDS = 60


def pg_bin_dir(configured: str) -> Path | None:
    """BACKUP_PG_BIN_DIR, else Debian's newest /usr/lib/postgresql/<major>/bin, else None (the PATH)."""
    if configured:
        return Path(configured)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return versions[-1] if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RestoredCluster:
    """The postmaster of one restored data directory, run as `os_user` (PostgreSQL refuses root)."""

    def __init__(self, data: Path, *, bin_dir: Path | None, os_user: str, log: Path) -> None:
        self.data, self.bin_dir, self.os_user, self.log = data, bin_dir, os_user, log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._complete_config()
        self.port = free_port()
        postgres = str(self.bin_dir / "postgres") if self.bin_dir else "postgres"
        command = [postgres, "-D", str(self.data), "-p", str(self.port), "-k", str(self.data)]
        # Archiving stays off (pgBackRest's restore set it so too): this cluster must never push WAL into the live
        # cluster's repository. Small shared buffers: it runs beside the live server.
        for setting in ("listen_addresses=127.0.0.1", "archive_mode=off", "shared_buffers=128MB", "cluster_name="):
            command += ["-c", setting]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **run_as(self.os_user)
            )

    def _complete_config(self) -> None:
        """A cluster whose configuration lives outside its data directory (Debian's /etc/postgresql) restores
        without it: start such a one on defaults, reachable only through its socket, by the same OS user."""
        for name, text in (("postgresql.conf", ""), ("pg_hba.conf", "local all all trust\n"), ("pg_ident.conf", "")):
            path = self.data / name
            if not path.exists():
                path.write_text(text)
                chown_for(path, self.os_user)

    def params(self, database: dict[str, Any]) -> dict[str, Any]:
        """`database`'s psycopg2 keywords (user, password, dbname) pointed at this cluster's socket."""
        return {**database, "host": str(self.data), "port": self.port, "connect_timeout": 5}

    def wait_usable(self, database: dict[str, Any], *, timeout: float) -> None:
        """Until it accepts connections and has left recovery (replayed to the target and promoted)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                raise PitrError(f"the restored cluster stopped: {self.last_log_error()}")
            with contextlib.suppress(psycopg2.OperationalError):
                connection = psycopg2.connect(**self.params(database))
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_is_in_recovery()")
                        row = cursor.fetchone()
                finally:
                    connection.close()
                if row is not None and not row[0]:
                    return
            if time.monotonic() > deadline:
                raise PitrError(f"the restored cluster did not finish recovery within {timeout:.0f} s")
            time.sleep(0.2)

    def counts(self, database: dict[str, Any]) -> dict[str, int]:
        """Rows of every ordinary table (schema.table → count), the check that the restored data is readable."""
        connection = psycopg2.connect(**self.params(database))
        try:
            with connection.cursor() as cursor:
                cursor.execute(TABLES)
                tables = cursor.fetchall()
                counts = {}
                for schema, table in tables:
                    cursor.execute(
                        sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                    )
                    row = cursor.fetchone()
                    counts[f"{schema}.{table}"] = int(row[0]) if row else 0
        finally:
            connection.close()
        return counts

    def last_log_error(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        errors = [line for line in lines if "FATAL:" in line or "PANIC:" in line or "ERROR:" in line]
        return (errors or lines or ["no log"])[-1].strip()[:500]

    def stop(self) -> None:
        """Fast shutdown (SIGINT) of the PID it started; SIGKILL to its group if that does not end it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
