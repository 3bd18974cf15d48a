"""GET /health/: the database is required (503 without it); the cache and the broker only degrade. Anyone gets the
status word (`ok`, `degraded`, `down`); agents and admins (their API token, or signed in to the admin) also get each
dependency's check with its latency or error, and whether read-only mode refuses writes (itsm.services.readonly),
which does not change the status: that is about the dependencies. A read replica (itsm/replica.py) down or lagging
degrades the status: the primary serves its reads. Connection details and exception text are not
for anonymous callers. GET /metrics: django-prometheus' export, with the read-only gauge brought up to date first,
for `Authorization: Bearer <ITSM_METRICS_TOKEN>` only (or, with no token set, for loopback callers only)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from itsm import replica
from itsm.api.authentication import TokenAuthentication
from itsm.middleware import RETRY_AFTER_SECONDS
from itsm.roles import is_admin, is_staff_role
from itsm.services.health import check_broker, check_cache, check_database
from itsm.services.pitr import pitr_health
from itsm.services.readonly import read_only_observe

logger = logging.getLogger(__name__)


def _run(check: Callable[[], None]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # every failure of a dependency is a health answer, not an error
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def _caller(request: HttpRequest) -> Any:
    """The user of the session or the API token, or None. A wrong token (or one that cannot be checked, the
    database being down) is no error here: the caller gets the public answer, as a probe without a token does."""
    try:
        user: Any = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            found = TokenAuthentication().authenticate(request)
            user = found[0] if found else None
        return user if user is not None and user.is_authenticated else None
    except Exception:
        return None


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _run(check_database), "cache": _run(check_cache), "broker": _run(check_broker)}
    if (replica_check := _replica()) is not None:
        checks["replica"] = replica_check
    read_only = _read_only()  # on every call: it brings the read-only gauge up to date
    for name, check in checks.items():
        if check["status"] != "ok":
            # What anonymous callers are not told, for the operators (with the database down, nobody is).
            logger.warning("health: %s is down: %s", name, check["error"])
    database_up = checks["database"]["status"] == "ok"
    if not database_up:
        word = "down"
    else:
        word = "degraded" if any(check["status"] != "ok" for check in checks.values()) else "ok"
    # With the database down, no token can be checked: everyone gets the status word (the log has the error).
    body: dict[str, object] = {"status": word}
    caller = _caller(request) if database_up else None
    if caller is not None and is_staff_role(caller):
        body = {**body, **read_only, "checks": checks}
        # Admins also get `pgbackrest check` (at most once a minute): about recovery, so it leaves the status word.
        archiving = pitr_health() if is_admin(caller) else None
        if archiving is not None:
            body["pgbackrest"] = archiving
    response = JsonResponse(body, status=200 if database_up else 503)
    if not database_up:
        response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _read_only() -> dict[str, object]:
    state = read_only_observe()
    if state is None:
        return {"read_only": False}
    return {"read_only": True, "read_only_reason": state.get("reason", ""), "read_only_since": state.get("since")}


def _replica() -> dict[str, object] | None:
    """The read replica, when there is one: down or lagging degrades (the primary serves its reads), never downs."""
    state = replica.status(fresh=True)
    if state is None:
        return None
    check: dict[str, object] = {"status": state.state, "lag_seconds": state.lag_seconds}
    if not state.usable:
        check["error"] = state.error or f"{state.lag_seconds} s behind (limit {settings.ITSM_REPLICA_MAX_LAG_SECONDS})"
    return check


def _metrics_allowed(request: HttpRequest) -> bool:
    """The bearer token against the current one and its rotation fallbacks, every one compared (in constant time)
    so the time taken does not tell which one nearly matched. No token configured: `make run`'s development mode,
    where a Prometheus on the same machine may scrape; `check --deploy` refuses that in production (itsm.E026)."""
    if not settings.ITSM_METRICS_TOKEN:
        try:
            return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
        except ValueError:
            return False
    accepted = [settings.ITSM_METRICS_TOKEN, *settings.ITSM_METRICS_TOKEN_FALLBACKS]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    matches = [hmac.compare_digest(token.strip().encode(), candidate.encode()) for candidate in accepted]
    return scheme.lower() == "bearer" and any(matches)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        response = JsonResponse(
            {
                "detail": "Missing or wrong bearer token: send Authorization: Bearer <ITSM_METRICS_TOKEN>.",
                "code": "not_authenticated",
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    read_only_observe()
    replica.status()
    return ExportToDjangoView(request)
