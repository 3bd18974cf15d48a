"""The platform's own middleware: the request id of every log line, read-only mode (writes get a JSON 503 while it
is on) and the database-down guard (a database outage anywhere is a JSON 503 with Retry-After, never an HTML 500).

This module sits below itsm.api: the API imports its constants and responses from here, never the other way."""

from __future__ import annotations

import logging
from typing import Any

from django.core.signals import request_finished
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from itsm import audit, log_context, replica
from itsm.services.readonly import read_only_state

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_DOWN = "The database is unavailable. Retry shortly."
RETRY_AFTER_SECONDS = "5"
READ_ONLY_RETRY_AFTER_SECONDS = "60"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def read_only_detail(reason: str) -> str:
    """What a refused write is told: the reason given with the mode (`read_only_mode on --reason`, or the restore's)."""
    reason = reason.strip().rstrip(".")
    return f"The platform is read-only: {reason}. Retry later." if reason else "The platform is read-only. Retry later."


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse({"detail": DATABASE_DOWN, "code": "database_unavailable"}, status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


class RequestIdMiddleware:
    """Takes Nginx's X-Request-ID (or makes one up when it is missing or unfit to log), answers with it, and puts it
    on every log line of the request and into every Celery task the request enqueues (itsm.log_context)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = log_context.accepted_request_id(request.headers.get(log_context.HEADER))
        # Kept until the response is closed: Django logs a 4xx or 5xx ("Not Found: ...") after the middleware.
        log_context.request_id.set(request_id)
        response = self.get_response(request)
        response[log_context.HEADER] = request_id
        return response


@receiver(request_finished)
def _forget_request_id(**_: Any) -> None:
    log_context.request_id.set(None)


class AuditMiddleware:
    """Attributes the audit trail's rows written during the request to it (itsm.audit): its user, read when a row is
    written (DRF authenticates an API token inside the view, after this), its site as the source, its address."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        source = audit.request_source(request.path)
        with audit.audit_context(source=source, detail=f"{request.method} {request.path}"[:300], request=request):
            return self.get_response(request)


class ReadOnlyModeMiddleware:
    """Answers POST, PUT, PATCH and DELETE with 503 while read-only mode is on (itsm.services.readonly). Only writes
    look at the flag, so reads cost nothing."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            state = read_only_state()
            if state is not None:
                reason = str(state.get("reason") or "")
                response = JsonResponse(
                    {
                        "detail": read_only_detail(reason),
                        "code": "read_only_mode",
                        "reason": reason,
                        "since": state.get("since"),
                    },
                    status=503,
                )
                response["Retry-After"] = READ_ONLY_RETRY_AFTER_SECONDS
                return response
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A database outage outside DRF (admin, health, middleware) is a JSON 503 with Retry-After, not an HTML 500."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            logger.warning("database unavailable: %s", exception)
            return database_unavailable_response()
        return None


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ReplicaWritesMiddleware:
    """Read-your-writes: after a signed-in client's successful write, its lag-tolerant reads stay on the primary
    until the replica has replayed it (itsm/replica.py). Without a replica it does nothing."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and response.status_code < 400 and replica.configured():
            # DRF authenticates inside the view and sets the user on the request it wraps.
            replica.remember_write(getattr(request, "user", None))
        return response
