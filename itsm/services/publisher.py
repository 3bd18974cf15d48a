"""Publishing to the broker after a commit without making the request wait on a slow broker.

kombu waits up to its socket timeouts (2 s each) on a frozen Redis, and it runs in the thread that committed: a
request that created an incident would hang for seconds. Here the publish runs on one background thread per
process and the caller waits at most `WAIT_SECONDS` for it, and not at all while an earlier publish is still
stuck. A normal publish takes a few milliseconds, so callers (and tests) still see the message queued when they
return; a publish that outlasts the wait carries on in the background. Only sends whose failure is harmless
belong here: the outbox row stays pending and the relay queues it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

logger = logging.getLogger(__name__)

WAIT_SECONDS = 0.25
# Beyond this many sends waiting for the thread, new ones are dropped at once (the relay covers them).
MAX_BACKLOG = 200

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_pid = 0
_backlog = 0


def _get_executor() -> ThreadPoolExecutor:
    """This process's publisher; a forked child (gunicorn, Celery's pool) makes its own, its parent's thread is gone."""
    global _executor, _executor_pid
    with _lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="itsm-publish")
            _executor_pid = os.getpid()
        return _executor


def publish_soon(send: Callable[[], object], what: str) -> None:
    """Run `send` (which must handle its own errors) on the publisher thread; wait for it at most WAIT_SECONDS,
    or not at all if the thread is still busy with earlier sends (the broker is slow or down)."""
    global _backlog
    with _lock:
        if _backlog >= MAX_BACKLOG:
            logger.warning("the broker is slow and %s sends wait: %s is left to the relay", _backlog, what)
            return
        busy = _backlog > 0
        _backlog += 1

    def run() -> None:
        global _backlog
        try:
            send()
        except Exception:
            logger.exception("publishing %s failed", what)
        finally:
            with _lock:
                _backlog -= 1

    # In the caller's context: the request id goes into the message's header (itsm.log_context).
    future = _get_executor().submit(contextvars.copy_context().run, run)
    if busy:
        return
    try:
        future.result(timeout=WAIT_SECONDS)
    except FutureTimeout:
        logger.warning("the broker is slow: %s is published in the background", what)
