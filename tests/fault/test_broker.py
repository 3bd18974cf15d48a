"""The broker Redis frozen (SIGSTOP) and then killed: tickets, incidents, backups and manual job runs are
still accepted within a second, and the pages of a critical incident reach their webhook exactly once after the
broker is back (the outbox)."""

from __future__ import annotations

import logging
import signal
import time

import pytest

from tests.fault.conftest import Stack
from tests.fault.receiver import webhook_receiver
from tests.system.processes import eventually, http, wait_for_port

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

RELAY = "from itsm.services.notifications import notification_relay; print(notification_relay())"


def create(stack: Stack, what: str, body: dict[str, object]) -> tuple[float, int]:
    """POST a ticket or an incident; returns (seconds, id)."""
    started = time.monotonic()
    status, _, answer = http("POST", f"{stack.base}/api/v1/{what}/", body, token=stack.agent, timeout=10)
    seconds = time.monotonic() - started
    assert status == 201, (what, status, answer, stack.logs())
    return seconds, int(answer["id"])


def queue_admin_work(stack: Stack, when: str, seconds: dict[str, float]) -> None:
    """An admin's manual backup and "run now" of a job: both answer at once, their messages are sent later."""
    for what, path, body, expected in (
        ("backup", "backups/", {"kind": "database"}, 202),
        ("job run now", "jobs/cleanup/run/", {}, 202),
    ):
        started = time.monotonic()
        status, _, answer = http("POST", f"{stack.base}/api/v1/{path}", body, token=stack.admin, timeout=10)
        seconds[f"{what}, {when}"] = time.monotonic() - started
        assert status == expected, (what, status, answer, stack.logs())


def test_work_is_accepted_with_the_broker_frozen_or_down_and_pages_are_delivered_once_after(stack: Stack) -> None:
    with webhook_receiver() as receiver:
        stack.run("-m", "tests.fault.seed", "endpoint", "fault-receiver", receiver.url)
        stack.worker("critical,notifications", "--concurrency", "2")
        seconds: dict[str, float] = {}
        incidents = []

        stack.broker.freeze()
        try:
            seconds["ticket, broker frozen"], _ = create(stack, "tickets", {"title": "VPN down (frozen broker)"})
            seconds["incident, broker frozen"], incident = create(
                stack, "incidents", {"title": "Checkout fails (frozen broker)", "severity": "critical"}
            )
            incidents.append(incident)
            queue_admin_work(stack, "broker frozen", seconds)
        finally:
            stack.broker.thaw()

        stack.broker.stop(signal.SIGKILL)
        seconds["ticket, broker down"], _ = create(stack, "tickets", {"title": "VPN down (no broker)"})
        seconds["incident, broker down"], incident = create(
            stack, "incidents", {"title": "Checkout fails (no broker)", "severity": "critical"}
        )
        incidents.append(incident)
        queue_admin_work(stack, "broker down", seconds)
        log.info("creation with the broker frozen or down, seconds: %s", {k: round(v, 3) for k, v in seconds.items()})
        assert all(value < 1 for value in seconds.values()), seconds

        # The pages are outbox rows, waiting for the broker.
        pages = stack.query(
            "SELECT id, status FROM itsm_notification WHERE incident_id = ANY(%s) AND endpoint_id IS NOT NULL",
            (incidents,),
        )
        assert len(pages) == 2, pages
        stack.broker.start()
        wait_for_port(int(stack.env["CELERY_BROKER_URL"].rsplit(":", 1)[1].split("/")[0]), 10)
        back = time.monotonic()
        stack.run("manage.py", "shell", "-c", RELAY)  # what Beat runs every minute

        ids = {str(page_id) for page_id, _ in pages}
        eventually(lambda: set(receiver.answered) >= ids, 60, f"pages delivered; {stack.logs()}")
        delivered_after = time.monotonic() - back
        time.sleep(3)  # a duplicate would arrive now: the frozen broker got the first publish after all

        assert {key: receiver.answered[key] for key in ids} == dict.fromkeys(ids, 1), receiver.answered
        assert {key: receiver.received[key] for key in ids} == dict.fromkeys(ids, 1), receiver.received
        attempts = stack.query(
            "SELECT notification_id, count(*) FILTER (WHERE success) FROM itsm_deliveryattempt"
            " WHERE notification_id = ANY(%s) GROUP BY notification_id",
            ([int(key) for key in ids],),
        )
        assert sorted(count for _, count in attempts) == [1, 1], attempts
        statuses = stack.query("SELECT status FROM itsm_notification WHERE id = ANY(%s)", ([int(k) for k in ids],))
        assert statuses == [("delivered",), ("delivered",)], statuses
        log.info("both pages delivered once, %.1f s after the broker came back", delivered_after)
