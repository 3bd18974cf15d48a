"""A Celery pool process killed in the middle of a webhook delivery, then a whole worker killed in the middle of
one: the delivery task runs again and the page reaches the receiver exactly once (one answered request, one
successful attempt in the log)."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from tests.fault.conftest import Stack
from tests.fault.receiver import Receiver, webhook_receiver
from tests.system.processes import eventually, http

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

# Short, so that the whole-worker test sees the message again within seconds (production: an hour).
VISIBILITY_TIMEOUT = 4


def page_held_at_the_receiver(stack: Stack, receiver: Receiver, title: str) -> int:
    """Declare a critical incident whose page to the receiver is held unanswered; returns the page's id."""
    receiver.arrived.clear()
    receiver.released.clear()
    receiver.hold.set()
    status, _, body = http(
        "POST", f"{stack.base}/api/v1/incidents/", {"title": title, "severity": "critical"}, token=stack.agent
    )
    assert status == 201, f"{body}\n{stack.logs()}"
    assert receiver.arrived.wait(30), stack.logs()
    (page,) = stack.query(
        "SELECT id FROM itsm_notification WHERE incident_id = %s AND endpoint_id IS NOT NULL", (body["id"],)
    )
    return int(page[0])


def release(receiver: Receiver) -> None:
    """The held request is dropped unanswered; later ones are answered."""
    receiver.hold.clear()
    receiver.released.set()


def delivered_once(stack: Stack, receiver: Receiver, page: int, started: float) -> float:
    eventually(lambda: receiver.answered[str(page)] >= 1, 30, f"page {page} delivered; {stack.logs()}")
    seconds = time.monotonic() - started
    time.sleep(2)  # a second delivery would show up now
    assert receiver.answered[str(page)] == 1, receiver.answered
    assert receiver.received[str(page)] == 2, receiver.received  # the interrupted request, then the one answered
    rows = stack.query(
        "SELECT n.status, n.attempts, count(a.id) FILTER (WHERE a.success) FROM itsm_notification n"
        " LEFT JOIN itsm_deliveryattempt a ON a.notification_id = n.id WHERE n.id = %s GROUP BY n.id",
        (page,),
    )
    assert rows == [("delivered", 2, 1)], rows
    return seconds


def test_a_delivery_interrupted_by_a_killed_pool_process_or_worker_is_done_again_exactly_once(stack: Stack) -> None:
    env = {"ITSM_CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    with webhook_receiver() as receiver:
        stack.run("-m", "tests.fault.seed", "endpoint", "fault-receiver", receiver.url)
        worker = stack.worker("critical,notifications", "--concurrency", "1", **env)

        # 1. The pool process dies mid-request: the worker sees it lost and puts the message back at once.
        page = page_held_at_the_receiver(stack, receiver, "Pool process killed mid-delivery")
        (pool,) = worker.children()
        os.kill(pool, signal.SIGKILL)
        killed = time.monotonic()
        release(receiver)
        pool_seconds = delivered_once(stack, receiver, page, killed)
        assert "WorkerLostError" in (stack.root / "worker.log").read_text()

        # 2. The whole worker dies mid-request: nobody puts the message back; after the visibility timeout the
        # next worker to start restores it from the unacknowledged set.
        page = page_held_at_the_receiver(stack, receiver, "Worker killed mid-delivery")
        worker.kill_group()
        killed = time.monotonic()
        release(receiver)
        time.sleep(max(0.0, VISIBILITY_TIMEOUT + 1 - (time.monotonic() - killed)))
        stack.worker("critical,notifications", "--concurrency", "1", name="worker-2", **env)
        worker_seconds = delivered_once(stack, receiver, page, killed)

    log.info(
        "delivered once: %.1f s after the pool process was killed, %.1f s after the whole worker was killed"
        " (visibility timeout %s s)",
        pool_seconds,
        worker_seconds,
        VISIBILITY_TIMEOUT,
    )
