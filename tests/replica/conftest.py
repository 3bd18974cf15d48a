"""Throw-away PostgreSQL clusters for the replica tests: a primary from initdb on a loopback port with the platform
migrated into it, two agents, a Redis, and a hot standby streaming from it (pg_basebackup -R)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.system.processes import (
    BIN,
    PG_BIN,
    PYTHON,
    Managed,
    _postgres_user,
    base_env,
    free_port,
    http,
    postgres_initdb,
    postgres_owned_dir,
    postgres_query,
    postgres_server,
    redis_server,
    started,
    wait_for,
    wait_for_port,
    wait_for_postgres,
)

PASSWORD = "replica-test-Password-1"


def sql(port: int, statement: str, dbname: str = "itsm") -> Any:
    """On the platform's database of a cluster of these tests."""
    return postgres_query(port, statement, dbname)


@dataclass
class Clusters:
    primary_port: int
    replica_port: int
    primary: Managed
    replica: Managed
    env: dict[str, str]


def manage(env: dict[str, str], *args: str, log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run([PYTHON, "manage.py", *args], env=env, check=True, stdout=out, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def primary_and_standby(logs: Path) -> Iterator[Clusters]:
    home = postgres_owned_dir("itsm-replica-")
    primary_data, replica_data = home / "primary", home / "replica"
    primary_port, replica_port, redis_port = free_port(), free_port(), free_port()
    postgres_initdb(primary_data, logs / "initdb.log")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, True)
        primary = postgres_server(primary_data, primary_port, logs / "primary.log")
        stack.enter_context(primary.start())
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
        yield Clusters(primary_port, replica_port, primary, replica, env)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    with primary_and_standby(tmp_path_factory.mktemp("replica-logs")) as made:
        yield made


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
