"""Reads past one database server, against real clusters: a primary made with initdb on a loopback port, a hot
standby streaming from it (pg_basebackup -R), a Redis, and the API under gunicorn with ITSM_REPLICA_DATABASE_URL.

- Read-your-writes: with the replica's replay paused, the client that created a ticket lists it at once (its reads
  stay on the primary until the replica has replayed its write), while another client's list comes from the
  replica and does not have it yet; a ticket's page (not lag-tolerant) is read from the primary by anyone.
- A replica that lags past ITSM_REPLICA_MAX_LAG_SECONDS is not read from: the other client's list has the ticket.
- Replica stopped: lists are served from the primary, `/health/` says degraded (replica down), never down.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.system.processes import (
    BIN,
    PG_BIN,
    PYTHON,
    Managed,
    _postgres_user,
    base_env,
    eventually,
    free_port,
    http,
    postgres_initdb,
    postgres_owned_dir,
    postgres_server,
    redis_server,
    started,
    wait_for,
    wait_for_port,
    wait_for_postgres,
)

pytestmark = pytest.mark.slow

PASSWORD = "replica-test-Password-1"


def sql(port: int, statement: str, dbname: str = "itsm") -> Any:
    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, connect_timeout=3)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchone() if cursor.description else None
    finally:
        connection.close()


@dataclass
class Clusters:
    primary_port: int
    replica_port: int
    replica: Managed
    env: dict[str, str]


def manage(env: dict[str, str], *args: str, log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run([PYTHON, "manage.py", *args], env=env, check=True, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    logs = tmp_path_factory.mktemp("replica-logs")
    home = postgres_owned_dir("itsm-replica-")
    primary_data, replica_data = home / "primary", home / "replica"
    primary_port, replica_port, redis_port = free_port(), free_port(), free_port()
    postgres_initdb(primary_data, logs / "initdb.log")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, True)
        stack.enter_context(postgres_server(primary_data, primary_port, logs / "primary.log").start())
        wait_for_postgres(primary_port, timeout=60)
        sql(primary_port, "CREATE DATABASE itsm", dbname="postgres")
        env = base_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{primary_port}/itsm",
            REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            ITSM_VAR_DIR=str(logs),
        )
        redis = redis_server(redis_port, logs, logs / "redis.log")
        stack.enter_context(redis.start())
        wait_for_port(redis_port, timeout=20)
        manage(env, "migrate", "--no-input", log=logs / "migrate.log")
        for name in ("writer", "reader"):
            manage(env, "add_user", name, "--role", "agent", "--password", PASSWORD, log=logs / "users.log")
        # The standby: a base backup that writes its own primary_conninfo and standby.signal (-R).
        with (logs / "basebackup.log").open("ab") as out:
            subprocess.run(
                [
                    *(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres"),
                    *("-D", str(replica_data), "-R", "-X", "stream", "--no-sync"),
                ],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
                **_postgres_user(),
            )
        replica = postgres_server(replica_data, replica_port, logs / "replica.log")
        stack.enter_context(replica.start())
        wait_for_postgres(replica_port, timeout=60)
        assert sql(replica_port, "SELECT pg_is_in_recovery()") == (True,)
        env["ITSM_REPLICA_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{replica_port}/itsm"
        env["ITSM_REPLICA_CHECK_SECONDS"] = "0.1"
        yield Clusters(primary_port, replica_port, replica, env)


@contextlib.contextmanager
def api(clusters: Clusters, log: Path, **settings: str) -> Iterator[str]:
    port = free_port()
    env = {**clusters.env, "PORT": str(port), "ITSM_GUNICORN_WORKERS": "1", **settings}
    command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"]
    with started(command, env, log):
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health/", timeout=60)
        yield base


def token(base: str, username: str) -> str:
    status, _, body = http("POST", f"{base}/api/v1/auth/token/", {"username": username, "password": PASSWORD})
    assert status == 200, body
    return str(body["token"])


def listed(base: str, who: str) -> list[str]:
    status, _, body = http("GET", f"{base}/api/v1/tickets/?page_size=200", token=who)
    assert status == 200, body
    return [ticket["title"] for ticket in body["results"]]


def caught_up(clusters: Clusters) -> None:
    (lsn,) = sql(clusters.primary_port, "SELECT pg_current_wal_lsn()::text")
    eventually(
        lambda: sql(clusters.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") == (True,),
        30,
        "the replica replayed everything",
    )


def test_a_writer_reads_its_write_while_others_read_the_replica_until_it_replays(clusters, tmp_path):
    with api(clusters, tmp_path / "api.log", ITSM_REPLICA_MAX_LAG_SECONDS="3600") as base:
        writer, reader = token(base, "writer"), token(base, "reader")
        caught_up(clusters)
        sql(clusters.replica_port, "SELECT pg_wal_replay_pause()")
        try:
            status, _, ticket = http("POST", f"{base}/api/v1/tickets/", {"title": "Printer on fire"}, token=writer)
            assert status == 201, ticket
            # The writer's own list: from the primary, which has it.
            assert "Printer on fire" in listed(base, writer)
            # Anyone else's list: from the replica, paused before the write.
            assert "Printer on fire" not in listed(base, reader)
            # A ticket's page is not lag-tolerant: the primary serves it to anyone.
            status, _, page = http("GET", f"{base}/api/v1/tickets/{ticket['id']}/", token=reader)
            assert (status, page["title"]) == (200, "Printer on fire")
            # Staff see the replica in /health/'s detail.
            _, _, health = http("GET", f"{base}/health/", token=reader)
            assert health["checks"]["replica"]["status"] == "ok"
        finally:
            sql(clusters.replica_port, "SELECT pg_wal_replay_resume()")
        eventually(lambda: "Printer on fire" in listed(base, reader), 30, "the replica replayed the ticket")


def test_a_replica_lagging_past_the_limit_is_not_read_from(clusters, tmp_path):
    with api(clusters, tmp_path / "api.log", ITSM_REPLICA_MAX_LAG_SECONDS="1") as base:
        writer, reader = token(base, "writer"), token(base, "reader")
        caught_up(clusters)
        sql(clusters.replica_port, "SELECT pg_wal_replay_pause()")
        try:
            status, _, body = http("POST", f"{base}/api/v1/tickets/", {"title": "Lagging replica"}, token=writer)
            assert status == 201, body
            # Paused, the replica falls behind; past 1 s it is "lagging" and the reader's list comes from the primary.
            eventually(lambda: "Lagging replica" in listed(base, reader), 30, "the reader's list from the primary")
            assert sql(clusters.replica_port, "SELECT count(*) FROM itsm_ticket WHERE title = 'Lagging replica'") == (
                0,
            )
            _, _, health = http("GET", f"{base}/health/", token=reader)
            assert (health["status"], health["checks"]["replica"]["status"]) == ("degraded", "lagging")
        finally:
            sql(clusters.replica_port, "SELECT pg_wal_replay_resume()")


def test_with_the_replica_stopped_reads_go_to_the_primary_and_health_is_degraded(clusters, tmp_path):
    with api(clusters, tmp_path / "api.log") as base:
        writer, reader = token(base, "writer"), token(base, "reader")
        status, _, body = http("POST", f"{base}/api/v1/tickets/", {"title": "Replica gone"}, token=writer)
        assert status == 201, body
        clusters.replica.stop()
        try:
            assert "Replica gone" in listed(base, reader)
            status, _, health = http("GET", f"{base}/health/", token=reader)
            assert status == 200
            assert (health["status"], health["checks"]["replica"]["status"]) == ("degraded", "down")
            assert health["checks"]["database"]["status"] == "ok"
            _, _, public = http("GET", f"{base}/health/")
            assert public == {"status": "degraded"}
        finally:
            clusters.replica.start()
            wait_for_postgres(clusters.replica_port, timeout=60)
