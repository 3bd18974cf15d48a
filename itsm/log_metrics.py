"""Count ERROR log records into itsm_log_errors_total{process}, for the manual's "error logs < 5 per hour".

LOGGING installs the handler on the root logger of every process. Celery replaces the root logger's handlers when
a worker or Beat sets up its logging, so `itsm.celery_metrics` adds the handler back after Celery is done.
"""

from __future__ import annotations

import logging
import sys
from functools import cache

from itsm import metrics


@cache
def process_kind(argv: tuple[str, ...] | None = None) -> str:
    """`worker` or `beat` for those Celery commands, `api` for everything else (gunicorn, runserver, commands)."""
    words = set(sys.argv if argv is None else argv)
    if "beat" in words:
        return "beat"
    if "worker" in words:
        return "worker"
    return "api"


class ErrorCountingHandler(logging.Handler):
    """Writes nothing; counts every record at ERROR or above."""

    def __init__(self, level: int = logging.ERROR) -> None:
        super().__init__(level=max(level, logging.ERROR))

    def emit(self, record: logging.LogRecord) -> None:
        metrics.LOG_ERRORS.labels(process=process_kind()).inc()


def install(logger: logging.Logger) -> None:
    """Add the handler to `logger` unless it already has one."""
    if not any(isinstance(handler, ErrorCountingHandler) for handler in logger.handlers):
        logger.addHandler(ErrorCountingHandler())
