"""Logs an operator can use (docs/operations.md#logs): JSON lines with the request id of the request that wrote them,
carried into the Celery tasks that request enqueued."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import signals
from django.conf import settings

from itsm.log_context import ContextFilter, JsonFormatter, accepted_request_id, request_id
from itsm.services.ticket_notifications import EXPAND_TASK
from itsm_project.celery import app
from tests.system.processes import BIN, base_env, current_database_url, started

REQUEST_ID = "3f2b9c0d4e5a6b7c8d9e0f1a2b3c4d5e"


class Lines:
    """What the console handler of settings.LOGGING would print, one parsed JSON object per line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def lines() -> Iterator[Lines]:
    captured = Lines()
    handler = logging.StreamHandler(captured.stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield captured
    finally:
        root.removeHandler(handler)


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    """The headers of every task message sent meanwhile (after the platform's receiver added its own)."""
    sent: list[dict[str, Any]] = []

    def record(headers: dict[str, Any] | None = None, **_: Any) -> None:
        sent.append(dict(headers or {}))

    signals.before_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        signals.before_task_publish.disconnect(record)


def test_a_line_is_one_json_object_with_the_fields_an_operator_filters_on(lines):
    token = request_id.set(REQUEST_ID)
    try:
        logging.getLogger("itsm.services.anything").warning("the mail server said %s", "no")
    finally:
        request_id.reset(token)
    (line,) = lines.all()
    assert line["level"] == "WARNING"
    assert line["logger"] == "itsm.services.anything"
    assert line["message"] == "the mail server said no"
    assert line["request_id"] == REQUEST_ID
    assert line["process"] == "api"
    assert line["time"].endswith("+00:00")
    assert "T" in line["time"]
    assert "task_id" not in line


def test_an_exception_is_one_line_with_the_traceback_in_its_own_field(lines):
    try:
        raise ValueError('a "quoted"\nmulti-line reason')
    except ValueError:
        logging.getLogger("itsm.tasks.x").exception("the task failed")
    raw = lines.stream.getvalue()
    assert raw.count("\n") == 1
    (line,) = lines.all()
    assert line["message"] == "the task failed"
    assert line["request_id"] is None
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert 'ValueError: a "quoted"\nmulti-line reason' in line["exception"]


@pytest.mark.parametrize(
    "incoming",
    ["x" * 129, "abc 123 def", "id\nINFO forged line", "short", "<script>alert(1)</script>", ""],
)
def test_an_unfit_incoming_request_id_is_replaced_by_a_new_one(client, incoming):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID=incoming)
    returned = response["X-Request-ID"]
    assert returned != incoming
    assert returned == accepted_request_id(returned)
    assert len(returned) == 32


def test_a_fit_incoming_request_id_is_kept_and_returned(client):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID=REQUEST_ID)
    assert response["X-Request-ID"] == REQUEST_ID


def test_without_an_incoming_id_each_request_gets_its_own(client):
    first = client.get("/no-such-page/")["X-Request-ID"]
    second = client.get("/no-such-page/")["X-Request-ID"]
    assert first != second


@pytest.mark.django_db(transaction=True)
def test_a_requests_log_lines_and_the_task_it_enqueues_carry_its_request_id(as_requester, lines, published):
    as_requester.get("/api/v1/tickets/999999/", HTTP_X_REQUEST_ID=REQUEST_ID)  # django.request logs the 404
    response = as_requester.post(
        "/api/v1/tickets/",
        {"title": "Printer on fire", "description": "Third floor."},
        format="json",
        HTTP_X_REQUEST_ID=REQUEST_ID,
    )
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == REQUEST_ID
    request_lines = [line for line in lines.all() if line["logger"] == "django.request"]
    assert request_lines
    assert {line["request_id"] for line in request_lines} == {REQUEST_ID}
    (headers,) = [headers for headers in published if headers.get("task") == EXPAND_TASK]
    assert headers["request_id"] == REQUEST_ID

    # The worker's side, in this process: the task runs with the headers it was sent with.
    app.tasks[EXPAND_TASK].apply(task_id=headers["id"], headers=headers)
    task_lines = [line for line in lines.all() if line.get("task_id") == headers["id"]]
    assert task_lines, lines.all()
    assert {line["request_id"] for line in task_lines} == {REQUEST_ID}
    assert {line["task_name"] for line in task_lines} == {EXPAND_TASK}
    assert request_id.get() is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_workers_json_lines_of_the_task_carry_the_request_id_that_enqueued_it(as_requester, tmp_path):
    env = base_env(DATABASE_URL=current_database_url(), REDIS_URL=str(settings.REDIS_URL), ITSM_LOG_FORMAT="json")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("notifications")
    command = [str(BIN / "celery"), "-A", "itsm_project", "worker", "-Q", "notifications", "--concurrency", "1"]
    log = tmp_path / "worker.log"
    with started(command, env, log):
        response = as_requester.post(
            "/api/v1/tickets/",
            {"title": "VPN down", "description": "Since 9."},
            format="json",
            HTTP_X_REQUEST_ID=REQUEST_ID,
        )
        assert response.status_code == 201
        deadline, ours = time.monotonic() + 40, list[dict[str, Any]]()
        while time.monotonic() < deadline and not ours:
            time.sleep(0.5)
            parsed = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            ours = [line for line in parsed if line.get("task_name") == EXPAND_TASK]
    waiting = redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("notifications")
    assert ours, f"{waiting} message(s) still queued; the worker's log:\n{log.read_text()[-3000:]}"
    assert {line["request_id"] for line in ours} == {REQUEST_ID}
    assert {line["process"] for line in ours} == {"worker"}


@pytest.mark.parametrize(
    ("log_format", "expected"),
    [
        ("json", '"logger": "itsm.check", "process": "api", "request_id": null, "message": "hello"}'),
        ("plain", "WARNING itsm.check [api -] hello"),
    ],
)
def test_itsm_log_format_chooses_json_lines_or_plain_text_on_stdout(log_format, expected):
    code = "import django, logging; django.setup(); logging.getLogger('itsm.check').warning('hello')"
    env = base_env(ITSM_LOG_FORMAT=log_format, DJANGO_SETTINGS_MODULE="itsm_project.settings")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(expected), done.stdout


def test_an_unknown_log_format_stops_the_start_naming_the_variable():
    code = "import django; django.setup()"
    env = base_env(ITSM_LOG_FORMAT="xml", DJANGO_SETTINGS_MODULE="itsm_project.settings")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "ITSM_LOG_FORMAT='xml': use json or plain." in done.stderr
