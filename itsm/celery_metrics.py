"""Celery task metrics and the worker's /metrics endpoint (docs/monitoring.md).

Task outcomes and durations are recorded from Celery's signals in the pool process that ran the task. With
PROMETHEUS_MULTIPROC_DIR set, every pool process writes its samples there, and the worker's main process serves
all of them on ITSM_CELERY_METRICS_PORT (0, the default, serves nothing) once the pool is up. A pool process
that exits is marked dead so its live gauges disappear.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import signals

from itsm import log_metrics, metrics

logger = logging.getLogger(__name__)

_started: dict[str, float] = {}


def _task_name(sender: Any, task: Any = None) -> str:
    return str(getattr(task or sender, "name", None) or "unknown")


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _count_error_logs(logger: logging.Logger, **_: Any) -> None:
    """Celery set up its own handlers on the root (and task) logger: count its ERROR records too."""
    log_metrics.install(logger)


@signals.task_prerun.connect
def _task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_postrun(sender: Any = None, task_id: str | None = None, state: str | None = None, **kw: Any) -> None:
    name = _task_name(sender, kw.get("task"))
    started = _started.pop(task_id or "", None)
    if started is not None:
        metrics.CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)
    metrics.CELERY_TASKS.labels(task=name, outcome=(state or "unknown").lower()).inc()


@signals.task_revoked.connect
def _task_revoked(sender: Any = None, request: Any = None, expired: bool = False, **_: Any) -> None:
    name = _task_name(sender)
    metrics.CELERY_TASKS.labels(task=name, outcome="expired" if expired else "revoked").inc()


def serve(port: int, address: str = "0.0.0.0") -> Any:  # noqa: S104 - scraped from other containers
    """Serve the multiprocess directory's metrics on `port` from a daemon thread; returns the server."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server


@signals.worker_ready.connect
def _worker_ready(**_: Any) -> None:
    from django.conf import settings

    port = getattr(settings, "ITSM_CELERY_METRICS_PORT", 0)
    if not port:
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        logger.warning("ITSM_CELERY_METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: no worker metrics")
        return
    serve(port)
    logger.info("worker metrics on :%s/metrics", port)


@signals.worker_process_shutdown.connect
def _worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
