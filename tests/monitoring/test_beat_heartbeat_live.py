"""Beat watched from outside: a real `celery beat` and Debian's `prometheus` on loopback.

Beat runs as in compose (the scheduler of itsm_project's settings, PROMETHEUS_MULTIPROC_DIR, the heartbeat on
ITSM_BEAT_METRICS_PORT) against a Redis broker of the test's own; Prometheus scrapes it every second with the real
monitoring/rules/beat.yml (its `for:` shortened to 1 s). The heartbeat advances; BeatDown is quiet; Beat is stopped
by its PID; the heartbeat stops and BeatDown fires. Every wait polls with a generous timeout.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.system.processes import (
    BIN,
    REDIS_SERVER,
    ROOT,
    Managed,
    base_env,
    eventually,
    free_port,
    http,
    redis_server,
    started,
    wait_for,
    wait_for_port,
)

PROMETHEUS = shutil.which("prometheus")
HEARTBEAT = "itsm_beat_last_tick_timestamp_seconds"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None or REDIS_SERVER is None,
        reason="prometheus or redis-server is not installed (apt-get install -y prometheus redis-server)",
    ),
]


def heartbeat(port: int) -> float | None:
    """The heartbeat as Beat serves it, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(HEARTBEAT + " ")]
    return values[0] if values else None


def beat_down_rule() -> dict[str, Any]:
    rules = yaml.safe_load((ROOT / "monitoring" / "rules" / "beat.yml").read_text())
    [rule] = [rule for group in rules["groups"] for rule in group["rules"] if rule.get("alert") == "BeatDown"]
    return dict(rule)


def derived_prometheus(work: Path, beat_port: int) -> Path:
    """The real itsm-beat job and BeatDown rule, on loopback, every second."""
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "itsm-beat"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{beat_port}"]}]
    rule = beat_down_rule() | {"for": "1s"}
    (work / "rules").mkdir()
    (work / "rules" / "beat.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "itsm-beat", "interval": "1s", "rules": [rule]}]})
    )
    derived = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules/beat.yml"],
        "scrape_configs": [job],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(derived))
    return work / "prometheus.yml"


@dataclass
class Stack:
    beat: Managed
    beat_port: int
    prometheus: int

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.prometheus}/api/v1/query?query={quote(promql)}"
        status, _, body = http("GET", url)
        assert status == 200, body
        return list(body["data"]["result"])

    def beat_down(self) -> bool:
        return bool(self.query('ALERTS{alertname="BeatDown", alertstate="firing"}'))


@contextlib.contextmanager
def running(work: Path) -> Iterator[Stack]:
    assert PROMETHEUS is not None
    redis_port, beat_port, prometheus_port = free_port(), free_port(), free_port()
    (work / "redis").mkdir()
    (work / "metrics").mkdir()
    (work / "var").mkdir()
    env = base_env(
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        DJANGO_SECRET_KEY="beat-heartbeat-test-key-0123456789abcdef0123456789abcdef",
        ITSM_VAR_DIR=str(work / "var"),
        ITSM_BEAT_METRICS_PORT=str(beat_port),
        PROMETHEUS_MULTIPROC_DIR=str(work / "metrics"),
    )
    beat = Managed([str(BIN / "celery"), "-A", "itsm_project", "beat", "--loglevel", "INFO"], work / "beat.log", env)
    prometheus = [
        PROMETHEUS,
        f"--config.file={derived_prometheus(work, beat_port)}",
        f"--storage.tsdb.path={work / 'prometheus'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    with redis_server(redis_port, work / "redis", work / "redis.log") as redis, beat:
        redis.start()
        wait_for_port(redis_port, timeout=20)
        beat.start()
        with started(prometheus, base_env(), work / "prometheus.log"):
            wait_for(f"http://127.0.0.1:{prometheus_port}/-/ready", timeout=20)
            yield Stack(beat, beat_port, prometheus_port)


def test_beat_heartbeat_advances_and_beat_down_fires_once_beat_is_stopped(tmp_path):
    with running(tmp_path) as stack:
        # Beat ticks at least every 5 s (CELERY_BEAT_MAX_LOOP_INTERVAL): the stamp it serves moves on.
        first = eventually(lambda: heartbeat(stack.beat_port), 60, "Beat serves its heartbeat")
        eventually(lambda: (heartbeat(stack.beat_port) or 0) > first, 60, "the heartbeat advanced")
        assert abs(time.time() - first) < 60

        # Prometheus scrapes it, and the rule's expression is empty: BeatDown does not fire.
        expression = beat_down_rule()["expr"]
        eventually(lambda: stack.query(HEARTBEAT + '{job="itsm-beat"}'), 30, "Prometheus scraped the heartbeat")
        eventually(lambda: not stack.query(expression) and not stack.beat_down(), 30, "BeatDown quiet")

        stack.beat.stop()
        stopped_at = time.time()
        assert stack.beat.process is not None
        assert stack.beat.process.returncode is not None

        # The heartbeat is gone with Beat; the expression holds and BeatDown fires.
        assert heartbeat(stack.beat_port) is None
        eventually(lambda: stack.query(expression), 60, "the BeatDown expression holds")
        eventually(stack.beat_down, 60, "BeatDown fires")
        [last] = stack.query(f'max_over_time({HEARTBEAT}{{job="itsm-beat"}}[5m])')
        assert float(last["value"][1]) <= stopped_at, "no tick after Beat was stopped"
