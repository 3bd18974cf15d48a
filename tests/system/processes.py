"""Helpers for tests that start real processes on loopback and must leave none behind."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent
# Debian's package names the binary prometheus-alertmanager; upstream's tarball names it alertmanager.
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


# Ports handed out by free_port(), each locked (flock) in this directory while the process that took it lives: no
# other test process on the machine (another xdist worker, another checkout's run) is handed the same one.
PORT_LOCKS = Path(tempfile.gettempdir()) / "itsm-test-ports"
_held_ports: list[int] = []  # the lock files' descriptors, closed (and the locks dropped) when the process exits


def _ephemeral_floor() -> int:
    """Where the kernel's range for outgoing connections starts: ports below it are never taken by a client."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _lock(port: int) -> bool:
    PORT_LOCKS.mkdir(exist_ok=True)
    with contextlib.suppress(PermissionError):
        PORT_LOCKS.chmod(0o1777)  # shared by every user's test runs, like /tmp
    fd = os.open(PORT_LOCKS / str(port), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_ports.append(fd)
    return True


def free_port() -> int:
    """A loopback port that nothing listens on and no other test process is handed while this one runs.

    Chosen below the kernel's range for outgoing connections (so a client's connection cannot take it before the
    server binds it) and locked for this process's life (so no parallel test, in this run or another, gets it)."""
    low, high = 10000, _ephemeral_floor()
    for _ in range(200):
        if high - low < 1000:  # an unusual port range: the kernel's choice, still locked
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        else:
            port = random.randrange(low, high)
        if _bindable(port) and _lock(port):
            return port
    raise AssertionError("no free loopback port found in 200 tries")


def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 5,
    bearer: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request (with extra `headers`, if any); returns (status, headers, parsed JSON body or text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    text = raw.decode()
    try:
        return status, headers, json.loads(text)
    except ValueError:
        return status, headers, text


def pauses(longest: float) -> Iterator[float]:
    """The pauses of a polling loop: short at first (most waits end within a fraction of a second), then growing
    to `longest` (a long wait does not poll a busy machine 20 times a second)."""
    pause = 0.05
    while True:
        yield pause
        pause = min(longest, pause * 1.5)


def wait_for(url: str, timeout: float, expect: int = 200) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    for pause in pauses(0.3):
        if time.monotonic() >= deadline:
            break
        try:
            status, _, body = http("GET", url, timeout=2)
            if status == expect:
                return body
            last = (status, body)
        except OSError as error:
            last = error
        time.sleep(pause)
    raise AssertionError(f"{url} did not answer {expect} within {timeout} s; last: {last}")


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy (and return that), or fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    for pause in pauses(0.5):
        if time.monotonic() >= deadline:
            break
        found = check()
        if found:
            return found
        time.sleep(pause)
    raise AssertionError(f"not within {timeout} s: {what}")


def alertmanager_command(config: Path, storage: Path, port: int) -> list[str]:
    """Alertmanager alone on a loopback port: no cluster gossip (its default port 9094 would be shared by tests)."""
    assert ALERTMANAGER is not None, "prometheus-alertmanager is not installed"
    return [
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` in its own process group; on exit make sure the whole group is gone."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


# How the test run reaches its PostgreSQL (.ci/run: through PgBouncer, session work past it). A process given a
# database on that same server keeps them; one given a cluster of its own (or none) must not inherit them.
POOLING_VARIABLES = ("ITSM_DB_TRANSACTION_POOLING", "ITSM_DIRECT_DATABASE_URL")


def _server(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    return parts.hostname, parts.port or 5432


def base_env(**overrides: str) -> dict[str, str]:
    """The test's environment without the database, cache and broker settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    database = overrides.get("DATABASE_URL")
    if database is None or _server(database) != _server(os.environ.get("DATABASE_URL", "")):
        for name in POOLING_VARIABLES:
            env.pop(name, None)
    env.update(overrides)
    return env


def current_database_url() -> str:
    """The URL of the database the test runs on, for processes that must see its (committed) rows."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


# --- processes a fault test stops, freezes and restarts ----------------------------------------------------------
def _newest_postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _newest_postgres_bin()
REDIS_SERVER = shutil.which("redis-server")


def _postgres_user() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: as root, run its binaries as the `postgres` OS user."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def postgres_owned_dir(prefix: str) -> Path:
    """A fresh directory the PostgreSQL binaries may write to (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


class Managed:
    """One server process a test starts, stops, freezes and restarts, always by the PID it started.

    It runs in its own session; `close()` thaws and ends its whole process group, so nothing is left behind."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str] | None = None, **popen: Any) -> None:
        self.command, self.log, self.env, self.popen = command, log, env, popen
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self) -> Managed:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.popen,
            )
        return self

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Send `sig` to the process and wait for it to exit (SIGKILL to its group after `timeout`)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()
        os.kill(self.pid, sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()

    def kill_group(self) -> None:
        """SIGKILL to the process and every child of it (a whole Celery worker: main process and pool)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(child) for child in path.read_text().split()] if path.exists() else []

    def close(self) -> None:
        if self.process is None:
            return
        self.stop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Managed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def redis_server(port: int, directory: Path, log: Path, *, persistent: bool = False) -> Managed:
    """A Redis of the test's own on loopback; `persistent` keeps an append-only file, as a broker should."""
    assert REDIS_SERVER is not None, "redis-server is not installed"
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
    command += ["--appendonly", "yes" if persistent else "no", "--maxmemory-policy", "noeviction"]
    return Managed(command, log)


def postgres_initdb(data: Path, log: Path) -> None:
    """A new cluster in `data` (a directory PostgreSQL may write to, see `postgres_owned_dir`), trusting loopback."""
    command = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
    with log.open("ab") as out:
        subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=120, **_postgres_user())


def postgres_server(data: Path, port: int, log: Path) -> Managed:
    """The postmaster of the cluster in `data` on a loopback port, tuned for throwaway tests (no fsync)."""
    command = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
    for setting in (
        "listen_addresses=127.0.0.1",
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "shared_buffers=16MB",
        "max_connections=60",
    ):
        command += ["-c", setting]
    return Managed(command, log, **_postgres_user())


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def wait_for_postgres(port: int, timeout: float) -> None:
    """Until the server on `port` accepts a query (it listens a little before it is ready)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def postgres_query(port: int, statement: str, dbname: str = "postgres") -> Any:
    """One statement on a loopback cluster of the test's own, in autocommit; its first row (None without rows)."""
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, connect_timeout=3)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchone() if cursor.description else None
    finally:
        connection.close()
