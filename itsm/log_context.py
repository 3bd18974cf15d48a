"""What every log line carries (docs/operations.md#logs): the request id of the HTTP request it belongs to, or the
task it was written by, and the kind of process; and the two formats, JSON lines (production) or plain text.

The request id lives in a context variable: `itsm.middleware.RequestIdMiddleware` sets it for a request,
`before_task_publish` copies it into the header of every task enqueued meanwhile, and `task_prerun` sets it again
in the worker, so the worker's lines of that task carry the same id. This module needs no Django settings and
defines no metric: it is imported with the Celery app, before settings, and by gunicorn for its access log.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import traceback
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from typing import Any

from celery import signals

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
# Nginx's $request_id is 32 hex digits, a UUID 36 characters; anything else an operator could grep for fits here.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
running_task: ContextVar[tuple[str, str] | None] = ContextVar("running_task", default=None)


def current_request_id() -> str | None:
    """The request id of the request or task running now: the audit trail's correlation id (AUDITLOG_CID_GETTER)."""
    return request_id.get()


@cache
def process_kind(argv: tuple[str, ...] | None = None) -> str:
    """`worker` or `beat` for those Celery commands, `api` for everything else (gunicorn, runserver, commands)."""
    words = set(sys.argv if argv is None else argv)
    if "beat" in words:
        return "beat"
    if "worker" in words:
        return "worker"
    return "api"


def accepted_request_id(incoming: str | None) -> str:
    """The incoming id if it is safe to log and echo back; a new one otherwise (too long, odd characters, none)."""
    if incoming and VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Stamps the process kind, request id and task on every record a handler receives (it filters nothing)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current_task = running_task.get()
        record.process_kind = process_kind()
        record.request_id = getattr(record, "request_id", None) or request_id.get() or "-"
        record.task_name, record.task_id = current_task or (None, None)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, process, request_id, message, and the task's
    name and id in a worker, the traceback in `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": getattr(record, "process_kind", None) or process_kind(),
            "request_id": _or_none(getattr(record, "request_id", None)),
            "message": record.getMessage(),
        }
        task_id = getattr(record, "task_id", None)  # set by ContextFilter in a worker
        if task_id:
            line["task_name"] = getattr(record, "task_name", None)
            line["task_id"] = task_id
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        line.update(getattr(record, "json_fields", None) or {})
        return json.dumps(line, ensure_ascii=False, default=str)


class GunicornJsonFormatter(JsonFormatter):
    """gunicorn's own lines as JSON, and each access line with its request's fields (gunicorn passes them as the
    record's args); the request id is the one the middleware answered with."""

    ACCESS_FIELDS = {"remote_addr": "h", "method": "m", "path": "U", "query": "q", "status": "s", "bytes": "B"}

    def format(self, record: logging.LogRecord) -> str:
        atoms: Any = record.args if record.name == "gunicorn.access" else None
        if isinstance(atoms, Mapping):
            fields: dict[str, Any] = {name: atoms[atom] for name, atom in self.ACCESS_FIELDS.items()}
            fields["status"] = int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"]
            fields["duration_ms"] = int(atoms["M"])
            fields["user_agent"] = atoms["a"]
            record.request_id = _or_none(atoms["{x-request-id}o"])
            record.json_fields = fields
        return super().format(record)


def _or_none(value: str | None) -> str | None:
    return None if value in (None, "-") else value


# --- Celery: the request id travels in a message header, and Celery keeps Django's LOGGING ---------------------


@signals.setup_logging.connect
def _keep_django_logging(**_: Any) -> None:
    """A receiver here stops Celery from replacing the root logger's handlers: a worker and Beat log through
    settings.LOGGING like the API, in the same format, with the error counter."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    current = request_id.get()
    if current and headers is not None:
        headers.setdefault(TASK_HEADER, current)


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    context = getattr(task, "request", None)
    sent = getattr(context, TASK_HEADER, None) or (getattr(context, "headers", None) or {}).get(TASK_HEADER)
    request_id.set(sent if isinstance(sent, str) and VALID_REQUEST_ID.fullmatch(sent) else None)
    running_task.set((str(getattr(task, "name", "")), str(task_id or "")))


@signals.task_postrun.connect
def _task_finished(**_: Any) -> None:
    request_id.set(None)
    running_task.set(None)
