"""Benchmark: the platform's database backup against a bare `pg_dump -Fc` of the same database, in the same run.

The backup is what a scheduled run does before verification: pg_dump -Fc of a snapshot exported by a REPEATABLE
READ transaction that meanwhile counts and hashes every table (the manifest), then fsync, SHA-256 and rename.
The verification (a restore into a scratch database) is timed separately, for information.

    .venv/bin/python bench/backup_bench.py --tickets 1000000 --runs 3

It creates (and afterwards drops) the database itsm_bench_backup on the server of --server-url, builds the schema
with `manage.py migrate`, seeds the tickets with COPY, then alternates the two measurements and prints medians.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from itsm.backup.base import no_progress  # noqa: E402
from itsm.backup.local import LocalStorage  # noqa: E402
from itsm.backup.postgres import PostgresDumper, child_env, connection_params  # noqa: E402

WORD_LIST = (
    "printer vpn laptop password reset login error slow timeout disk full mailbox quota access request monitor "
    "keyboard license install update crash network wifi certificate expired database backup report invoice export "
    "import sync calendar meeting room badge phone headset screen flicker battery charger"
)
WORDS = WORD_LIST.split()
STATUSES = ["new"] * 8 + ["open"] * 10 + ["in_progress"] * 12 + ["pending"] * 5 + ["resolved"] * 15 + ["closed"] * 50
PRIORITIES = ["critical"] * 3 + ["high"] * 17 + ["medium"] * 55 + ["low"] * 25
CATEGORIES = ["access", "performance", "bug", "question", "outage", "hardware", "request"]


def database_settings(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "postgres",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": parts.port or 5432,
    }


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)


class Rows(io.TextIOBase):
    """A file-like object that COPY reads: tab-separated ticket rows generated on the fly."""

    def __init__(self, count: int, requesters: list[int], agents: list[int], services: list[int]) -> None:
        self.rows = self._rows(count, requesters, agents, services)
        self.buffer = ""

    def _rows(self, count: int, requesters: list[int], agents: list[int], services: list[int]) -> Iterator[str]:
        rng = random.Random(42)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        for number in range(count):
            created = start + timedelta(seconds=number * 31 + rng.randrange(30))
            status = rng.choice(STATUSES)
            words = rng.choices(WORDS, k=rng.randrange(20, 90))
            title = " ".join(rng.choices(WORDS, k=rng.randrange(3, 9))).capitalize()
            done = status in ("resolved", "closed")
            resolved = (created + timedelta(hours=rng.randrange(1, 200))).isoformat() if done else r"\N"
            closed = resolved if status == "closed" else r"\N"
            assignee = str(rng.choice(agents)) if status != "new" else r"\N"
            yield (
                "\t".join(
                    [
                        title,
                        " ".join(words),
                        status,
                        rng.choice(PRIORITIES),
                        rng.choice(CATEGORIES),
                        str(rng.choice(services)),
                        str(rng.choice(requesters)),
                        assignee,
                        created.isoformat(),
                        created.isoformat(),
                        resolved,
                        closed,
                        "met" if done else "ok",
                        "1",
                    ]
                )
                + "\n"
            )

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self.buffer) < size:
            try:
                self.buffer += next(self.rows)
            except StopIteration:
                break
        if size < 0:
            size = len(self.buffer)
        chunk, self.buffer = self.buffer[:size], self.buffer[size:]
        return chunk

    def readline(self, size: int = -1) -> str:  # COPY uses read(); kept for the io interface
        return self.read(size)


def seed(params: dict[str, object], tickets: int) -> float:
    started = time.perf_counter()
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined) SELECT '!', false, 'bench' || g, '', '', '', g <= 20, true, now() "
            "FROM generate_series(1, 520) g RETURNING id, is_staff"
        )
        users = cursor.fetchall()
        agents = [uid for uid, staff in users if staff]
        requesters = [uid for uid, staff in users if not staff]
        cursor.execute("INSERT INTO itsm_team (name, slug) VALUES ('Platform', 'platform') RETURNING id")
        team = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO itsm_service (name, slug, description, team_id) "
            "SELECT 'Service ' || g, 'service-' || g, '', %s FROM generate_series(1, 12) g RETURNING id",
            [team],
        )
        services = [row[0] for row in cursor.fetchall()]
        cursor.copy_expert(
            "COPY itsm_ticket (title, description, status, priority, category, service_id, requester_id, "
            "assignee_id, created_at, updated_at, resolved_at, closed_at, sla_status, version) FROM STDIN",
            Rows(tickets, requesters, agents, services),
            size=1 << 20,
        )
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"seeded {tickets} tickets in {time.perf_counter() - started:.1f} s; database {cursor.fetchone()[0]}")
    conn.close()
    return time.perf_counter() - started


def bare_pg_dump(params: dict[str, object], target: Path) -> float:
    started = time.perf_counter()
    run(["pg_dump", "--format=custom", f"--file={target}", "--no-password"], env=child_env(params))
    return time.perf_counter() - started


def platform_backup(dumper: PostgresDumper, storage: LocalStorage, relative: str) -> float:
    started = time.perf_counter()
    dumper.dump(storage.partial(relative), progress=no_progress)
    storage.commit(relative)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="itsm_bench_backup")
    parser.add_argument("--keep", action="store_true", help="Keep the seeded database (and reuse it next time).")
    parser.add_argument("--verify", action="store_true", help="Also time one verification (scratch restore).")
    args = parser.parse_args()

    server = database_settings(args.server_url)
    bench = {**server, "NAME": args.database}
    params = connection_params(bench)
    maintenance = psycopg2.connect(**connection_params(server))
    maintenance.autocommit = True
    with maintenance.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database])
        exists = cursor.fetchone() is not None
    if not (exists and args.keep):
        with maintenance.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{args.database}"')
        url = f"postgres://{bench['USER']}@{bench['HOST']}:{bench['PORT']}/{args.database}"
        env = {**os.environ, "DATABASE_URL": url, "ITSM_DB_STATEMENT_TIMEOUT_MS": "0"}
        run([sys.executable, "manage.py", "migrate", "--noinput"], env=env)
        seed(params, args.tickets)

    dumper = PostgresDumper(bench)
    bare: list[float] = []
    ours: list[float] = []
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="itsm-bench-") as work:
        storage = LocalStorage(Path(work))
        bare_pg_dump(params, Path(work) / "warmup.dump")  # the first read warms the page cache for both
        for number in range(args.runs):
            bare_file = Path(work) / f"bare{number}.dump"
            # Alternate the order, so neither always runs right after the other.
            if number % 2 == 0:
                bare.append(bare_pg_dump(params, bare_file))
                ours.append(platform_backup(dumper, storage, f"database/ours{number}.dump"))
            else:
                ours.append(platform_backup(dumper, storage, f"database/ours{number}.dump"))
                bare.append(bare_pg_dump(params, bare_file))
            ours_file = storage.path(f"database/ours{number}.dump")
            sizes = {"bare": bare_file.stat().st_size, "ours": ours_file.stat().st_size}
            print(f"run {number + 1}: pg_dump -Fc {bare[-1]:.2f} s, platform backup {ours[-1]:.2f} s")
            bare_file.unlink()
        verify_seconds = None
        if args.verify:
            manifest = dumper.dump(Path(work) / "v.dump", progress=no_progress)
            started = time.perf_counter()
            dumper.verify(Path(work) / "v.dump", manifest, label="bench", progress=no_progress)
            verify_seconds = time.perf_counter() - started

    median_bare, median_ours = statistics.median(bare), statistics.median(ours)
    ratio = median_ours / median_bare
    print(f"\ntickets: {args.tickets}, runs: {args.runs}")
    for name, times, size in (("pg_dump -Fc", bare, sizes["bare"]), ("platform backup", ours, sizes["ours"])):
        every = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name:<16} median {statistics.median(times):.2f} s (runs: {every}), {size} bytes")
    print(f"ratio {ratio:.2f} (target at most 1.30): {'PASS' if ratio <= 1.3 else 'FAIL'}")
    if verify_seconds is not None:
        print(f"verification (restore into a scratch database and compare): {verify_seconds:.2f} s")
    if not args.keep:
        with maintenance.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    maintenance.close()
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
