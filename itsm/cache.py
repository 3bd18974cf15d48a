"""The cache's Redis connections fail fast while Redis is known to be down or frozen.

django-redis with IGNORE_EXCEPTIONS turns a Redis error into a cache miss, but each call still waits for its
socket timeout first: against a frozen Redis (SIGSTOP, a full network buffer) every cache call of every request
waits ITSM_REDIS_TIMEOUT, and a request with a few of them becomes seconds slower. After a connection error or
timeout, this process skips Redis for `RETRY_SECONDS` (the calls fail at once and count as misses), then tries
again. Each process pays at most one timeout per period.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from redis.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRY_SECONDS = 5.0
FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class _Breakers:
    """When each Redis server (host, port) may be tried again; shared by the threads of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until: dict[tuple[str, int], float] = {}

    def is_open(self, server: tuple[str, int]) -> bool:
        return time.monotonic() < self._open_until.get(server, 0.0)

    def trip(self, server: tuple[str, int]) -> None:
        with self._lock:
            self._open_until[server] = time.monotonic() + RETRY_SECONDS


breakers = _Breakers()


class FailFastConnection(Connection):
    """A TCP connection to Redis that refuses at once while its server's breaker is open, and opens it on a
    connection error or timeout."""

    @property
    def _server(self) -> tuple[str, int]:
        return (str(self.host), int(self.port))

    def _refuse_while_open(self) -> None:
        if breakers.is_open(self._server):
            self.disconnect()
            raise RedisConnectionError("Redis failed moments ago; skipped until it is retried")

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_while_open()
        try:
            super().connect_check_health(*args, **kwargs)
        except FAILURES:
            breakers.trip(self._server)
            raise

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._refuse_while_open()
        try:
            super().send_packed_command(command, check_health=check_health)
        except FAILURES:
            breakers.trip(self._server)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except FAILURES:
            breakers.trip(self._server)
            raise


class FailFastConnectionPool(ConnectionPool):
    """django-redis's CONNECTION_POOL_CLASS: plain TCP connections become `FailFastConnection`s."""

    def __init__(self, connection_class: type[Connection] = Connection, **kwargs: Any) -> None:
        if connection_class is Connection:
            connection_class = FailFastConnection
        super().__init__(connection_class=connection_class, **kwargs)
