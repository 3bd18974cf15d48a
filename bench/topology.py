"""The bench's second topology (`bench.run --topology replica-pgbouncer`): reads on a streaming replica and the API
behind PgBouncer in transaction pooling, as docs/operations.md deploys them, on loopback.

It starts, all on free loopback ports and by PIDs it keeps:

- a primary of its own (`initdb` into `--cluster-dir`, PostgreSQL's default configuration as on 5432, fsync on),
  which the bench seeds like any other bench database;
- a hot standby of it (`pg_basebackup -R -X stream`), taken after the seed, so it starts level with the primary;
- PgBouncer in front of the primary (`docker/pgbouncer.py`, the image's own role, as the `postgres` user since
  PgBouncer refuses to run as root).

The API then gets DATABASE_URL through PgBouncer with ITSM_DB_TRANSACTION_POOLING, ITSM_DIRECT_DATABASE_URL past
it and ITSM_REPLICA_DATABASE_URL on the standby. `stop()` ends each process group it started, replica first;
the data directories go with a temporary `--cluster-dir`, and a given one is kept (the primary is reused with
`--reuse`, the standby is taken afresh each run).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "itsm_bench"


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


def _as_postgres() -> dict[str, Any]:
    """PostgreSQL and PgBouncer refuse to run as root: as root, run them as the `postgres` OS user."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _owned(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


class Topology:
    def __init__(self, cluster_dir: Path | None, database: str = DATABASE) -> None:
        self.temporary = cluster_dir is None
        self.home = _owned(Path(cluster_dir or tempfile.mkdtemp(prefix="itsm-bench-cluster-")))
        self.database = database
        self.primary_port, self.replica_port, self.bouncer_port = free_port(), free_port(), free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    def url(self, port: int) -> str:
        return f"postgres://postgres@127.0.0.1:{port}/{self.database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    def _spawn(self, command: list[str], log: str, **popen: Any) -> subprocess.Popen[bytes]:
        with (self.home / log).open("ab") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
            )
        self.processes.append(process)
        return process

    def _postgres(self, data: Path, port: int, log: str) -> None:
        command = [str(_pg_bin() / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100"]
        self._spawn(command, log, **_as_postgres())
        _wait_for_postgres(port, timeout=120)

    def start_primary(self) -> str:
        """The primary, created on first use; returns its direct URL for the seed."""
        data = self.home / "primary"
        if not (data / "PG_VERSION").exists():
            command = [str(_pg_bin() / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            with (self.home / "initdb.log").open("ab") as out:
                subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=120, **_as_postgres())
        self._postgres(data, self.primary_port, "primary.log")
        return self.primary_url

    def start_replica_and_bouncer(self) -> dict[str, str]:
        """The standby (a fresh base backup) and PgBouncer; returns the API's database settings."""
        data = self.home / "replica"
        shutil.rmtree(data, ignore_errors=True)
        command = [str(_pg_bin() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary_port)]
        command += ["-U", "postgres", "-D", str(data), "-R", "-X", "stream", "-c", "fast"]
        with (self.home / "basebackup.log").open("ab") as out:
            subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=1800, **_as_postgres())
        self._postgres(data, self.replica_port, "replica.log")
        bouncer = _owned(self.home / "pgbouncer")
        shutil.copy(ROOT / "docker" / "pgbouncer.py", bouncer / "pgbouncer.py")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ITSM_DIRECT_DATABASE_URL": self.primary_url,
            "PGBOUNCER_DIR": str(bouncer / "run"),
            "PGBOUNCER_LISTEN": f"127.0.0.1:{self.bouncer_port}",
            "PGBOUNCER_AUTH_TYPE": "trust",
        }
        self._spawn(["/usr/bin/python3", str(bouncer / "pgbouncer.py")], "pgbouncer.log", env=env, **_as_postgres())
        _wait_for_postgres(self.bouncer_port, timeout=30, dbname=self.database)
        return {
            "DATABASE_URL": self.url(self.bouncer_port),
            "ITSM_DB_TRANSACTION_POOLING": "true",
            "ITSM_DIRECT_DATABASE_URL": self.primary_url,
            "ITSM_REPLICA_DATABASE_URL": self.url(self.replica_port),
        }

    def replica_reads(self) -> int:
        """Ticket rows the standby has read since it started (scans of itsm_ticket there are the API's reads)."""
        with (
            contextlib.closing(
                psycopg2.connect(host="127.0.0.1", port=self.replica_port, user="postgres", dbname=self.database)
            ) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute(
                "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) FROM pg_stat_user_tables "
                "WHERE relname = 'itsm_ticket'"
            )
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def describe(self) -> str:
        return (
            f"primary 127.0.0.1:{self.primary_port}, streaming replica 127.0.0.1:{self.replica_port}, "
            f"PgBouncer (transaction pooling) 127.0.0.1:{self.bouncer_port}; logs in {self.home}"
        )

    def stop(self) -> list[int]:
        """Every process group it started, newest first (PgBouncer, the standby, the primary); the groups left."""
        left = []
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown; PgBouncer exits on it too
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if _group_alive(process.pid):
                left.append(process.pid)
        self.processes.clear()
        if self.temporary:
            shutil.rmtree(self.home, ignore_errors=True)
        return left


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if entry.name.isdigit() and int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _wait_for_postgres(port: int, timeout: float, dbname: str = "postgres") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, connect_timeout=2).close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {timeout:.0f} s: {error}") from error
            time.sleep(0.2)
