"""Celery Beat's heartbeat, watched from outside Beat (docs/monitoring.md#beat-heartbeat).

The in-app dead-man switch (`watch_jobs`) is itself a Beat job, so it cannot notice Beat dying. Instead the
scheduler stamps `itsm_beat_last_tick_timestamp_seconds` at the end of every tick, and Beat serves the gauge on
ITSM_BEAT_METRICS_PORT for Prometheus, where the rule BeatDown fires when the stamp stops advancing or vanishes.
A tick runs at least every CELERY_BEAT_MAX_LOOP_INTERVAL seconds, whatever the schedule.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import signals
from celery.beat import PersistentScheduler
from prometheus_client import start_http_server

from itsm import metrics
from itsm.celery_metrics import serve

logger = logging.getLogger(__name__)


class HeartbeatScheduler(PersistentScheduler):
    """Beat's default scheduler (the schedule file), stamping the heartbeat after each tick it completes.

    Stamped after the tick, not before: a tick that hangs must look stale. (A broker that does not answer does not
    hang it: sends time out after CELERY_BROKER_TRANSPORT_OPTIONS' socket_timeout, are logged and the loop goes on;
    RedisDown covers the broker.)"""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        metrics.BEAT_LAST_TICK.set(time.time())
        return interval


@signals.beat_init.connect
def _beat_init(**_: Any) -> None:
    from django.conf import settings

    port = getattr(settings, "ITSM_BEAT_METRICS_PORT", 0)
    if not port:
        return
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        serve(port)
    else:
        start_http_server(port, addr="0.0.0.0")  # noqa: S104 - scraped from other containers
    logger.info("beat heartbeat on :%s/metrics", port)
