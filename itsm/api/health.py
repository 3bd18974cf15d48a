"""GET /health/: the database is required (503 without it); the cache and the broker only degrade."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from itsm.api.errors import RETRY_AFTER_SECONDS


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    # django-redis ignores Redis errors by design, so a failed round trip shows as a value not read back.
    key, value = "health:probe", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise ConnectionError("cache did not return the value written")


def _check_broker() -> None:
    if settings.CELERY_BROKER_IS_FILESYSTEM:
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        if not folder.is_dir():
            raise ConnectionError(f"broker folder {folder} is missing")
        return
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1, transport_options={"socket_timeout": 1}) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)


def _run(check: Callable[[], None]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # every failure of a dependency is a health answer, not an error
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _run(_check_database), "cache": _run(_check_cache), "broker": _run(_check_broker)}
    if checks["database"]["status"] != "ok":
        response = JsonResponse({"status": "down", "checks": checks}, status=503)
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    degraded = any(check["status"] != "ok" for check in checks.values())
    return JsonResponse({"status": "degraded" if degraded else "ok", "checks": checks})
