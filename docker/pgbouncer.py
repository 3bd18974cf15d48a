"""PgBouncer (Debian's package, in the platform's image) between the API and workers and PostgreSQL: transaction
pooling, so that many client connections share a few server connections (docs/operations.md#pgbouncer).

    python docker/pgbouncer.py          # docker compose's and Kubernetes' `pgbouncer` service (entrypoint role)

It writes the configuration and the users file into PGBOUNCER_DIR (default /tmp/pgbouncer, memory in the
containers) from the environment, then becomes pgbouncer:

- ITSM_DIRECT_DATABASE_URL (or its _FILE): the PostgreSQL server, role and password to pool for; the database
  name of the URL is the one clients ask for. The role's password goes into the users file, so clients
  authenticate to PgBouncer with it (scram-sha-256) and PgBouncer logs in to PostgreSQL the same way.
- PGBOUNCER_LISTEN (default 0.0.0.0:6432), PGBOUNCER_POOL_SIZE (server connections per database and role, default
  20), PGBOUNCER_RESERVE_POOL (default 5), PGBOUNCER_MAX_CLIENTS (default 500), PGBOUNCER_AUTH_TYPE (default
  scram-sha-256; `trust` only for a loopback test), ITSM_DB_STATEMENT_TIMEOUT_MS (default 30000: every server
  connection gets it through connect_query, since PgBouncer refuses the startup `options` Django would send),
  PGBOUNCER_ANY_DATABASE (`true`: any database of that server by its name, as .ci/run's test database),
  PGBOUNCER_SERVER_CHECK_DELAY (default 10: a server connection idle that long is checked before a client gets it,
  so a restarted PostgreSQL does not hand out dead connections; 0 checks every time).

A missing or malformed URL stops it with a one-line message and exit status 2.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

# What the pool is for: Django outside transactions holds no server connection (transaction pooling), a server
# connection idle for a minute is closed, and the startup parameter psycopg sends is accepted.
FIXED = {
    "pool_mode": "transaction",
    "server_idle_timeout": "60",
    "ignore_startup_parameters": "extra_float_digits",
    "unix_socket_dir": "",
    "admin_users": "",
    "stats_users": "",
}


def env(name: str, default: str = "") -> str:
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def fail(message: str) -> None:
    sys.stderr.write(f"pgbouncer: {message}\n")
    sys.exit(2)


def quoted(value: str) -> str:
    """A value of pgbouncer.ini or the users file in double quotes (a double quote doubled)."""
    return '"' + value.replace('"', '""') + '"'


def configuration(url: str, directory: Path) -> tuple[str, str]:
    """(pgbouncer.ini, the users file) for `url`."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"} or not parts.hostname or not parts.path.strip("/"):
        fail("ITSM_DIRECT_DATABASE_URL must be postgres://USER:PASSWORD@HOST:PORT/DATABASE")
    user, password = unquote(parts.username or "postgres"), unquote(parts.password or "")
    database = unquote(parts.path.strip("/"))
    listen_host, _, listen_port = env("PGBOUNCER_LISTEN", "0.0.0.0:6432").rpartition(":")
    timeout = int(env("ITSM_DB_STATEMENT_TIMEOUT_MS", "30000"))
    server = f"host={parts.hostname} port={parts.port or 5432} dbname={database} user={user}"
    settings = {
        "listen_addr": listen_host or "0.0.0.0",  # noqa: S104 (inside its container)
        "listen_port": listen_port,
        "auth_type": env("PGBOUNCER_AUTH_TYPE", "scram-sha-256"),
        "auth_file": str(directory / "userlist.txt"),
        "max_client_conn": env("PGBOUNCER_MAX_CLIENTS", "500"),
        "default_pool_size": env("PGBOUNCER_POOL_SIZE", "20"),
        "reserve_pool_size": env("PGBOUNCER_RESERVE_POOL", "5"),
        "server_check_delay": env("PGBOUNCER_SERVER_CHECK_DELAY", "10"),
        "pidfile": str(directory / "pgbouncer.pid"),
        **FIXED,
    }
    connect_query = f"connect_query='SET statement_timeout = {timeout}'"
    ini = f"[databases]\n{database} = {server} {connect_query}\n"
    if env("PGBOUNCER_ANY_DATABASE") == "true":
        # Any other database name of the same server (a test run's database): `*` passes the client's name on.
        ini += f"* = host={parts.hostname} port={parts.port or 5432} user={user} {connect_query}\n"
    ini += "\n[pgbouncer]\n"
    ini += "".join(f"{name} = {value}\n" for name, value in settings.items())
    return ini, f"{quoted(user)} {quoted(password)}\n"


def main() -> None:
    url = env("ITSM_DIRECT_DATABASE_URL")
    if not url:
        fail("set ITSM_DIRECT_DATABASE_URL (PostgreSQL itself: postgres://USER:PASSWORD@HOST:PORT/DATABASE)")
    directory = Path(env("PGBOUNCER_DIR", "/tmp/pgbouncer"))  # noqa: S108 (memory in the container)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ini, users = configuration(url, directory)
    (directory / "userlist.txt").write_text(users)
    (directory / "userlist.txt").chmod(0o600)
    (directory / "pgbouncer.ini").write_text(ini)
    sys.stdout.flush()
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"  # Debian installs it in /usr/sbin
    os.execv(binary, [binary, str(directory / "pgbouncer.ini")])  # noqa: S606


if __name__ == "__main__":
    main()
