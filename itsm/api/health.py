"""GET /health/: the database is required (503 without it); the cache and the broker only degrade. `read_only` says
whether read-only mode refuses writes (itsm.services.readonly); it does not change the status, which is about the
dependencies. GET /metrics: django-prometheus' export, with the read-only gauge brought up to date first."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from itsm.middleware import RETRY_AFTER_SECONDS
from itsm.services.health import check_broker, check_cache, check_database
from itsm.services.readonly import read_only_observe


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
    checks = {"database": _run(check_database), "cache": _run(check_cache), "broker": _run(check_broker)}
    read_only = _read_only()
    if checks["database"]["status"] != "ok":
        response = JsonResponse({"status": "down", **read_only, "checks": checks}, status=503)
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    degraded = any(check["status"] != "ok" for check in checks.values())
    return JsonResponse({"status": "degraded" if degraded else "ok", **read_only, "checks": checks})


def _read_only() -> dict[str, object]:
    state = read_only_observe()
    if state is None:
        return {"read_only": False}
    return {"read_only": True, "read_only_reason": state.get("reason", ""), "read_only_since": state.get("since")}


def metrics(request: HttpRequest) -> HttpResponse:
    read_only_observe()
    return ExportToDjangoView(request)
