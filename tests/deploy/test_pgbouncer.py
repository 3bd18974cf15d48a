"""docker/pgbouncer.py, the image's `pgbouncer` role, run for real against the test's PostgreSQL: it writes
PgBouncer's configuration from ITSM_DIRECT_DATABASE_URL and becomes Debian's pgbouncer, in transaction pooling,
clients signing in with the role's password, every server connection under the statement timeout."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings
from django.db import connection

from tests.system.processes import (
    PYTHON,
    ROOT,
    Managed,
    _postgres_user,
    base_env,
    free_port,
    postgres_owned_dir,
    wait_for_port,
)

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# The script needs only the standard library: the system's Python, which the postgres user may run (as root, this
# test's virtualenv may live where that user cannot read).
SYSTEM_PYTHON = "/usr/bin/python3"
PASSWORD = "pooled-Password-1"


def direct_url(password: str = PASSWORD, name: str | None = None) -> str:
    """PostgreSQL itself (past the PgBouncer this run may go through), with `password` for PgBouncer's users file."""
    db = {**connection.settings_dict, **settings.ITSM_DIRECT_DATABASE}
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{password}@{host}:{port}/{name or db['NAME']}"


@contextlib.contextmanager
def running_bouncer(**settings_: str) -> Iterator[int]:
    assert Path(PGBOUNCER).exists(), "pgbouncer is not installed (apt-get install -y pgbouncer; .ci/run does)"
    port, home = free_port(), postgres_owned_dir("itsm-pgbouncer-")
    env = base_env(
        ITSM_DIRECT_DATABASE_URL=direct_url(),
        PGBOUNCER_DIR=str(home / "run"),
        PGBOUNCER_LISTEN=f"127.0.0.1:{port}",
        **settings_,
    )
    # PgBouncer refuses to run as root: as root, the image's role runs as the postgres user here.
    with Managed(
        [SYSTEM_PYTHON, str(ROOT / "docker" / "pgbouncer.py")], home / "pgbouncer.log", env, **_postgres_user()
    ) as server:
        server.start()
        try:
            wait_for_port(port, timeout=20)
        except AssertionError:
            raise AssertionError((home / "pgbouncer.log").read_text()) from None
        yield port
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def bouncer(db: None) -> Iterator[int]:
    with running_bouncer(
        PGBOUNCER_POOL_SIZE="1", PGBOUNCER_RESERVE_POOL="0", ITSM_DB_STATEMENT_TIMEOUT_MS="1234"
    ) as port:
        yield port


def connect(port: int, password: str = PASSWORD) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(
        host="127.0.0.1", port=port, user="postgres", password=password, dbname=connection.settings_dict["NAME"]
    )
    conn.autocommit = True
    return conn


def fetch(conn: psycopg2.extensions.connection, statement: str) -> object:
    with conn.cursor() as cursor:
        cursor.execute(statement)
        return cursor.fetchone()[0]


def test_clients_share_one_server_connection_between_transactions(bouncer):
    first, second = connect(bouncer), connect(bouncer)
    try:
        # One server connection (pool size 1) serves both clients: transaction pooling, not session pooling
        # (where the second client would wait for the first to disconnect).
        assert fetch(first, "SELECT pg_backend_pid()") == fetch(second, "SELECT pg_backend_pid()")
        assert fetch(second, "SHOW statement_timeout") == "1234ms"
    finally:
        first.close()
        second.close()


def test_a_wrong_password_is_refused(bouncer):
    with pytest.raises(psycopg2.OperationalError, match="SASL authentication failed"):
        connect(bouncer, password="wrong")


def test_without_the_url_it_says_what_to_set_and_exits_2(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "ITSM_DIRECT_DATABASE_URL"}
    result = subprocess.run(
        [SYSTEM_PYTHON, "docker/pgbouncer.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "set ITSM_DIRECT_DATABASE_URL" in result.stderr


MIGRATION_LOCK_SQL = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4157243001"


@pytest.mark.slow
def test_migrations_through_pgbouncer_take_turns_and_leave_no_lock_behind(db: None) -> None:
    """docker/migrate.py as the compose backends run it on start, two at once, through PgBouncer in transaction
    pooling: both finish, and no server connection keeps the migration lock (it is taken past PgBouncer). With one
    server connection, a lock taken through PgBouncer is the same session's for both (advisory locks are re-entrant):
    they would migrate at once and one would fail on a table the other made (seen with the old docker/migrate.py)."""
    name = f"itsm_migrate_{secrets.token_hex(4)}"
    direct = psycopg2.connect(direct_url(name="postgres"))
    direct.autocommit = True
    try:
        with direct.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        with running_bouncer(
            PGBOUNCER_POOL_SIZE="1", PGBOUNCER_RESERVE_POOL="0", PGBOUNCER_ANY_DATABASE="true"
        ) as port:
            env = base_env(
                DATABASE_URL=f"postgres://postgres:{PASSWORD}@127.0.0.1:{port}/{name}",
                ITSM_DB_TRANSACTION_POOLING="true",
                ITSM_DIRECT_DATABASE_URL=direct_url(name=name),
            )
            runs = [
                subprocess.Popen(
                    [PYTHON, "docker/migrate.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                )
                for _ in range(2)
            ]
            outputs = [run.communicate(timeout=300)[0].decode() for run in runs]
            assert [run.returncode for run in runs] == [0, 0], outputs
            # Each prints the plan under the lock: the first all of it, the second nothing left.
            plans = sorted(re.findall(r"Migration plan: (\d+|no migrations) to apply", "".join(outputs)))
            assert len(plans) == 2, outputs
            assert plans[1] == "no migrations", outputs
            assert int(plans[0]) > 10, outputs
            with direct.cursor() as cursor:
                cursor.execute(MIGRATION_LOCK_SQL)
                assert cursor.fetchone() == (0,)
    finally:
        with direct.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        direct.close()
