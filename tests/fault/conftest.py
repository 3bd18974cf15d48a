"""The fault tests' own stack: a PostgreSQL cluster, a cache Redis, a broker Redis and gunicorn, all on loopback
and all started here, so that a test may stop, kill or freeze any of them by the PID it started. The shared
PostgreSQL and Redis of the machine are never touched.

The cluster is made once per session (initdb, migrate, users with tokens) and copied for each test."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.system.processes import (
    BIN,
    PG_BIN,
    PYTHON,
    REDIS_SERVER,
    ROOT,
    Managed,
    base_env,
    eventually,
    free_port,
    postgres_initdb,
    postgres_owned_dir,
    postgres_server,
    redis_server,
    wait_for,
    wait_for_port,
    wait_for_postgres,
)

DATABASE = "itsm"


@dataclass(frozen=True)
class Template:
    data: Path
    tokens: dict[str, str]


def _database_url(port: int) -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{DATABASE}"


def run_django(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run a Python module or manage.py with the stack's environment; returns its standard output."""
    result = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="session")
def fault_template() -> Iterator[Template]:
    """A stopped, migrated cluster with the fault users; each test copies it (about 0.1 s) instead of migrating."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN}: apt-get install postgresql")
    if REDIS_SERVER is None:
        pytest.skip("no redis-server: apt-get install redis-server")
    root = postgres_owned_dir("itsm-fault-template-")
    try:
        data, log = root / "data", root / "postgres.log"
        postgres_initdb(data, log)
        port = free_port()
        with postgres_server(data, port, log).start() as server:
            wait_for_postgres(port, 30)
            connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
            connection.close()
            env = base_env(DATABASE_URL=_database_url(port), ITSM_VAR_DIR=str(root / "var"))
            run_django(["manage.py", "migrate", "--noinput", "-v", "0"], env)
            tokens = json.loads(run_django(["-m", "tests.fault.seed", "users"], env).strip().splitlines()[-1])
            server.stop(signal.SIGINT)  # a fast, clean shutdown: the copies start without recovery
        yield Template(data=data, tokens=tokens)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Stack:
    root: Path
    tokens: dict[str, str]
    postgres: Managed
    cache: Managed
    broker: Managed
    api: Managed | None
    env: dict[str, str]
    base: str
    postgres_port: int
    resources: ExitStack = field(default_factory=ExitStack)

    @property
    def agent(self) -> str:
        return self.tokens["fault-agent"]

    @property
    def admin(self) -> str:
        return self.tokens["fault-admin"]

    def start_postgres(self) -> None:
        self.postgres.start()
        wait_for_postgres(self.postgres_port, 30)

    def stop_postgres(self) -> None:
        """`pg_ctl stop -m fast`: the postmaster ends every session and exits."""
        self.postgres.stop(signal.SIGINT)

    def celery(self, name: str, *args: str, **env: str) -> Managed:
        """A Celery worker or beat of this stack, not started yet; closed with the stack."""
        command = [str(BIN / "celery"), "-A", "itsm_project", *args]
        process = Managed(command, self.root / f"{name}.log", env=self.env | env)
        self.resources.callback(process.close)
        return process

    def run(self, *args: str) -> str:
        return run_django(list(args), self.env)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of `sql` on the stack's database, read by the test itself."""
        connection = psycopg2.connect(host="127.0.0.1", port=self.postgres_port, user="postgres", dbname=DATABASE)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def worker(self, queues: str, *args: str, name: str = "worker", **env: str) -> Managed:
        """A started Celery worker of this stack on `queues`, once it consumes."""
        log = self.root / f"{name}.log"
        options = ["-Q", queues, "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
        worker = self.celery(name, "worker", *options, *args, **env)
        worker.start()
        eventually(lambda: "ready." in log.read_text(errors="replace"), 60, f"{name} ready; {self.logs()}")
        return worker

    def logs(self) -> str:
        """The end of every log, for assertion messages."""
        parts = []
        for log in sorted(self.root.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}")
        return "\n".join(parts)


@contextmanager
def _stack(fault_template: Template, *, api: bool) -> Iterator[Stack]:
    root = postgres_owned_dir("itsm-fault-")
    resources = ExitStack()
    try:
        data = root / "data"
        subprocess.run(["cp", "-a", str(fault_template.data), str(data)], check=True)
        pg_port, cache_port, broker_port, api_port = free_port(), free_port(), free_port(), free_port()
        postgres = resources.enter_context(postgres_server(data, pg_port, root / "postgres.log"))
        cache = resources.enter_context(redis_server(cache_port, root, root / "cache.log"))
        broker_dir = root / "broker"
        broker_dir.mkdir()
        broker = resources.enter_context(redis_server(broker_port, broker_dir, root / "broker.log", persistent=True))
        env = base_env(
            DATABASE_URL=_database_url(pg_port),
            REDIS_URL=f"redis://127.0.0.1:{cache_port}/0",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{broker_port}/0",
            ITSM_VAR_DIR=str(root / "var"),
            ITSM_WEBHOOK_ALLOW_PRIVATE="true",
            ITSM_WEBHOOK_TIMEOUT_SECONDS="10",
            PORT=str(api_port),
            ITSM_GUNICORN_WORKERS="3",
            PYTHONUNBUFFERED="1",
        )
        gunicorn = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"]
        server = resources.enter_context(Managed(gunicorn, root / "api.log", env=env)) if api else None
        stack = Stack(
            root=root,
            tokens=fault_template.tokens,
            postgres=postgres,
            cache=cache,
            broker=broker,
            api=server,
            env=env,
            base=f"http://127.0.0.1:{api_port}",
            postgres_port=pg_port,
            resources=resources,
        )
        postgres.start()
        cache.start()
        broker.start()
        wait_for_postgres(pg_port, 30)
        wait_for_port(cache_port, 10)
        wait_for_port(broker_port, 10)
        if server is not None:
            server.start()
            wait_for(f"{stack.base}/health/", timeout=60)
        yield stack
    finally:
        resources.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def stack(fault_template: Template) -> Iterator[Stack]:
    """PostgreSQL, the cache and broker Redis and gunicorn, all of the test's own."""
    with _stack(fault_template, api=True) as stack:
        yield stack


@pytest.fixture
def backing(fault_template: Template) -> Iterator[Stack]:
    """The same without the API, for tests of workers and Beat alone."""
    with _stack(fault_template, api=False) as stack:
        yield stack
