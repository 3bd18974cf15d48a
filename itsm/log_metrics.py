"""Count ERROR log records into itsm_log_errors_total{process}, for the manual's "error logs < 5 per hour".

LOGGING installs the handler on the root logger of every process; a worker and Beat keep LOGGING
(`itsm.log_context`), and should Celery set up its own handlers anyway, `itsm.celery_metrics` adds it back.
"""

from __future__ import annotations

import logging

from itsm import metrics
from itsm.log_context import process_kind

__all__ = ["ErrorCountingHandler", "install", "process_kind"]


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
