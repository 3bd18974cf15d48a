"""The cache Redis killed, then frozen with SIGSTOP: ticket reads and writes go on, and not slower than
their baseline plus 0.5 s."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

import pytest

from tests.fault.conftest import Stack
from tests.system.processes import http

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

Operation = Callable[[], tuple[int, float]]


def ticket_operations(stack: Stack) -> dict[str, Operation]:
    """Each ticket operation of the API, returning (status, seconds); writes make and edit tickets of their own."""
    base, token = f"{stack.base}/api/v1/tickets/", stack.agent

    def timed(method: str, url: str, body: object = None, if_match: str | None = None) -> tuple[int, float]:
        started = time.monotonic()
        extra = {"If-Match": if_match} if if_match else None
        status, _, _ = http(method, url, body, token=token, timeout=10, headers=extra)
        return status, time.monotonic() - started

    def create() -> tuple[int, float]:
        return timed("POST", base, {"title": "Printer on fire", "description": "3rd floor", "priority": "high"})

    def read() -> tuple[int, float]:
        status, _, body = http("POST", base, {"title": "Read me"}, token=token)
        assert status == 201, body
        return timed("GET", f"{base}{body['id']}/")

    def update() -> tuple[int, float]:
        status, headers, body = http("POST", base, {"title": "Edit me"}, token=token)
        assert status == 201, body
        return timed("PATCH", f"{base}{body['id']}/", {"priority": "low"}, if_match=headers["ETag"])

    def search() -> tuple[int, float]:
        return timed("GET", f"{base}?search=printer&ordering=-created_at")

    return {
        "list": lambda: timed("GET", base),
        "search": search,
        "create": create,
        "read": read,
        "update": update,
        "health": lambda: timed("GET", f"{stack.base}/health/"),
    }


def run_all(operations: dict[str, Operation], rounds: int) -> dict[str, list[tuple[int, float]]]:
    return {name: [operation() for _ in range(rounds)] for name, operation in operations.items()}


def test_ticket_reads_and_writes_succeed_with_the_cache_redis_killed(stack: Stack) -> None:
    operations = ticket_operations(stack)
    assert all(status < 300 for results in run_all(operations, 2).values() for status, _ in results)

    stack.cache.stop(signal.SIGKILL)
    results = run_all(operations, 3)

    for name, answers in results.items():
        assert all(200 <= status < 300 for status, _ in answers), (name, answers, stack.logs())
    status, _, body = http("GET", f"{stack.base}/health/", token=stack.agent)  # the checks are for staff
    assert status == 200, body
    assert body["status"] == "degraded", body
    assert body["checks"]["cache"]["status"] != "ok", body
    assert body["checks"]["database"]["status"] == "ok", body
    slowest = {name: round(max(seconds for _, seconds in answers), 3) for name, answers in results.items()}
    log.info("cache killed: slowest answer per operation %s", slowest)


def test_ticket_requests_are_at_most_half_a_second_slower_with_the_cache_redis_frozen(stack: Stack) -> None:
    operations = ticket_operations(stack)
    run_all(operations, 1)  # warm every worker's connections
    baseline = {name: max(seconds for _, seconds in answers) for name, answers in run_all(operations, 3).items()}

    stack.cache.freeze()
    try:
        frozen = run_all(operations, 3)
    finally:
        stack.cache.thaw()

    slower = {name: round(max(s for _, s in answers) - baseline[name], 3) for name, answers in frozen.items()}
    log.info("cache frozen: baseline %s, extra seconds %s", {n: round(s, 3) for n, s in baseline.items()}, slower)
    for name, answers in frozen.items():
        assert all(200 <= status < 300 for status, _ in answers), (name, answers, stack.logs())
    assert all(extra < 0.5 for extra in slower.values()), slower
