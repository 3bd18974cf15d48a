"""`manage.py ensure_database`, the first step of `make run`: a DATABASE_URL naming a database that does not exist
is created when the server allows it, and is one line saying what to run when it does not, never a traceback."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from django.conf import settings
from psycopg2 import sql

from tests.system.processes import PYTHON, ROOT, base_env, free_port

pytestmark = pytest.mark.slow


def server_params(**overrides: Any) -> dict[str, Any]:
    """psycopg2 arguments for the test server's maintenance database, as the test's own user: PostgreSQL itself,
    past a pooler the run may go through (ensure_database talks to PostgreSQL directly)."""
    db = {**settings.DATABASES["default"], **settings.ITSM_DIRECT_DATABASE}
    params = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "dbname": "postgres",
    }
    return {key: value for key, value in {**params, **overrides}.items() if value is not None}


def url(name: str, *, user: str | None = None, port: int | None = None) -> str:
    params = server_params()
    password = f":{params['password']}" if params.get("password") and user is None else ""
    return f"postgres://{user or params['user']}{password}@{params['host']}:{port or params['port']}/{name}"


def sql_run(statement: sql.Composable) -> None:
    conn = psycopg2.connect(**server_params())
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def database_exists(name: str) -> bool:
    with psycopg2.connect(**server_params()) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def ensure_database(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "manage.py", "ensure_database"],
        cwd=ROOT,
        env=base_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def missing_name() -> Iterator[str]:
    """A database name nobody has used, dropped again after the test whatever happened."""
    name = f"itsm_ensure_{secrets.token_hex(4)}"
    assert not database_exists(name)
    yield name
    sql_run(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def user_without_createdb() -> Iterator[str]:
    role = f"itsm_nocreate_{secrets.token_hex(4)}"
    sql_run(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB").format(sql.Identifier(role)))
    yield role
    sql_run(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_a_missing_database_is_created_then_left_alone(missing_name):
    first = ensure_database(url(missing_name))
    assert first.returncode == 0, first.stderr
    assert f'Created the database "{missing_name}"' in first.stdout
    assert database_exists(missing_name)

    again = ensure_database(url(missing_name))
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_a_user_who_may_not_create_it_gets_one_line_with_the_createdb_command(missing_name, user_without_createdb):
    result = ensure_database(url(missing_name, user=user_without_createdb))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    params = server_params()
    assert result.stderr.rstrip().endswith(
        f"create it with: createdb -h {params['host']} -p {params['port']} -U postgres -O {user_without_createdb} "
        f"{missing_name}"
    )
    assert "permission denied to create database" in result.stderr
    assert not database_exists(missing_name)


def test_a_server_that_does_not_answer_is_one_line_too():
    result = ensure_database(url("itsm_nowhere", port=free_port()))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("CommandError: cannot connect to the database of DATABASE_URL: ")
    assert "Connection refused" in result.stderr


def test_sqlite_needs_nothing(tmp_path):
    result = ensure_database(f"sqlite:///{tmp_path / 'itsm.sqlite3'}")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_make_run_ensures_the_database_before_it_migrates():
    # `make -n` prints the recipe without running it; the whole `make run` on a database that did not exist is
    # tests/docs/test_docs_commands.py, which starts the platform that way.
    recipe = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    steps = [line.split("manage.py ")[1].split()[0] for line in recipe if "manage.py " in line]
    assert steps[:2] == ["ensure_database", "migrate"], recipe
