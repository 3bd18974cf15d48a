"""Reads that tolerate a little lag go to the streaming replica; everything else, and every write, to the primary.

Configured by ITSM_REPLICA_DATABASE_URL (the `replica` alias; unset, every query goes to `default` and nothing here
does any work). A view opts in with `replica_reads(request)` around its reads (lists, search, reports, the status
page, the portal's lists). Inside it the router sends reads to the replica unless

- the replica is down or lags more than ITSM_REPLICA_MAX_LAG_SECONDS (its state is probed at most every
  ITSM_REPLICA_CHECK_SECONDS per process: `status()`), or
- the client has written and the replica has not replayed past that write yet (read-your-writes): after a
  successful unsafe request of a signed-in client, `remember_write` keeps the primary's WAL position for that
  user in the cache; a replica read first asks the replica whether it has replayed that far.

Whoever reads from where, `/health/` reports the replica (`degraded` when it is down or lagging, never `down`: the
primary serves every read then) and the gauges itsm_replica_up and itsm_replica_lag_seconds follow `status()`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections

from itsm.metrics import REPLICA_LAG, REPLICA_UP

logger = logging.getLogger(__name__)

REPLICA = "replica"
PRIMARY = "default"


# The alias the router answers for reads in this context: set by `replica_reads`, None outside it.
_reads_from: contextvars.ContextVar[str | None] = contextvars.ContextVar("itsm_reads_from", default=None)


@dataclass(frozen=True)
class ReplicaStatus:
    state: str  # "ok", "lagging", "down"
    lag_seconds: float | None
    error: str = ""
    checked_at: float = 0.0

    @property
    def usable(self) -> bool:
        return self.state == "ok"


_last: ReplicaStatus | None = None


def configured() -> bool:
    return REPLICA in settings.DATABASES


# Seconds behind: 0 when everything received is replayed (an idle primary sends nothing), else the age of the last
# replayed transaction.
LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END
"""


def _probe() -> ReplicaStatus:
    now = time.monotonic()
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(LAG_SQL)
            in_recovery, lag = cursor.fetchone()
    except DatabaseError as exc:
        connections[REPLICA].close()
        return ReplicaStatus("down", None, f"{type(exc).__name__}: {exc}".strip()[:300], now)
    if not in_recovery:
        return ReplicaStatus("down", None, "the replica is not in recovery (promoted?): not read from", now)
    lag = float(lag)
    state = "lagging" if lag > settings.ITSM_REPLICA_MAX_LAG_SECONDS else "ok"
    return ReplicaStatus(state, round(lag, 3), "", now)


def status(*, fresh: bool = False) -> ReplicaStatus | None:
    """The replica's state, probed at most every ITSM_REPLICA_CHECK_SECONDS in this process; None without one."""
    global _last
    if not configured():
        return None
    if fresh or _last is None or time.monotonic() - _last.checked_at >= settings.ITSM_REPLICA_CHECK_SECONDS:
        previous, _last = _last, _probe()
        if not _last.usable:
            _forget_replayed()
        REPLICA_UP.set(1 if _last.usable else 0)
        REPLICA_LAG.set(_last.lag_seconds if _last.lag_seconds is not None else float("nan"))
        if previous is None or previous.state != _last.state:
            log = logger.info if _last.usable else logger.warning
            log("replica: %s (lag %s s) %s", _last.state, _last.lag_seconds, _last.error)
    return _last


def _forget_replayed() -> None:
    global _replayed
    _replayed = 0


def _write_key(user_id: Any) -> str:
    return f"itsm:replica:written:{user_id}"


def remember_write(user: Any) -> None:
    """After a signed-in client's write: its reads stay on the primary until the replica has replayed this far."""
    if not configured() or user is None or not user.is_authenticated:
        return
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            (lsn,) = cursor.fetchone()
    except DatabaseError:
        return  # the request's own error handling speaks of the database
    cache.set(_write_key(user.pk), lsn, timeout=settings.ITSM_REPLICA_READ_YOUR_WRITES_SECONDS)


# The furthest WAL position this process has seen the replica replay: replay only moves forward, so a write at or
# before it needs no question to the replica (after a client's write, its every read asked, docs/benchmarks.md).
# Forgotten whenever the replica is not usable (down, promoted, lagging), in case another server answers next.
_replayed = 0


def _position(lsn: str) -> int:
    """A pg_lsn's text ("16/B374D848") as a number that orders as the positions do."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _replayed_past(lsn: str) -> bool:
    global _replayed
    wanted = _position(lsn)
    if _replayed >= wanted:
        return True
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            (replayed,) = cursor.fetchone()
    except DatabaseError:
        connections[REPLICA].close()
        return False
    if replayed is None:
        return False
    _replayed = max(_replayed, _position(replayed))
    return _replayed >= wanted


def source_for(user: Any) -> str:
    """Where this client's lag-tolerant reads go now."""
    replica = status()
    if replica is None or not replica.usable:
        return PRIMARY
    if user is not None and user.is_authenticated:
        written = cache.get(_write_key(user.pk))
        if written and not _replayed_past(written):
            return PRIMARY
    return REPLICA


@contextlib.contextmanager
def replica_reads(request: Any) -> Iterator[str]:
    """Inside: reads go to the replica when `source_for` allows it; yields the alias chosen."""
    alias = source_for(getattr(request, "user", None))
    token = _reads_from.set(alias)
    try:
        yield alias
    finally:
        _reads_from.reset(token)


class ReplicaRouter:
    """Django's database router: reads inside `replica_reads` go where it chose; all else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return _reads_from.get() or PRIMARY

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == PRIMARY


def reads_from_replica(view: Any) -> Any:
    """A view (a function, or a method whose first argument after self is the request) whose reads tolerate lag."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        request = args[0] if hasattr(args[0], "method") else args[1]
        with replica_reads(request):
            return view(*args, **kwargs)

    return wrapped
