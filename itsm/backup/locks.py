"""Run locks that the operating system or PostgreSQL releases when the holder dies, so a backup whose worker was
killed can be taken over at once, while a duplicate message for a backup that is still running is skipped."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from itsm.backup.postgres import connect

# The first key of PostgreSQL's two-integer advisory locks: "backup" runs, the second key is the backup's id.
ADVISORY_NAMESPACE = 0x1B4C_0001
# ... and PITR drills, the second key the drill's id.
DRILL_NAMESPACE = 0x1B4C_0002


@contextlib.contextmanager
def advisory_lock(params: dict[str, Any], key: int, *, namespace: int = ADVISORY_NAMESPACE) -> Iterator[bool]:
    """Try a session advisory lock on a connection of its own; yields whether it is held. Closing the
    connection (or the death of this process) releases it."""
    conn = connect(params, autocommit=True)
    keys = [namespace, key % (1 << 31)]
    held = False
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", keys)
            held = bool(cursor.fetchone()[0])
        yield held
    finally:
        # Released before closing: the server frees a closed session's locks only once its backend has exited,
        # and the next run could ask for the lock before that and be told another process holds it.
        if held:
            with contextlib.suppress(Exception), conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", keys)
        conn.close()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[bool]:
    """Try an exclusive flock on `path` (one machine: the embedded mode); yields whether it is held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
