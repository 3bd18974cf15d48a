"""JSON errors everywhere: the DRF exception handler and Django's error handlers (the database-down guard and
read-only mode are middleware, in itsm/middleware.py)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from itsm.exceptions import Conflict as DomainConflict
from itsm.exceptions import InvalidInput, NotPermitted, NotReady, StaleVersion, TransitionNotAllowed
from itsm.middleware import DATABASE_DOWN, DATABASE_ERRORS, RETRY_AFTER_SECONDS, database_unavailable_response
from itsm.uploads import UploadTooLarge

logger = logging.getLogger(__name__)


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = 'This request needs an If-Match header with the ETag you last read (for example If-Match: "12-3").'
    default_code = "precondition_required"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain exceptions to their HTTP status; everything else keeps DRF's JSON shapes."""
    if isinstance(exc, TransitionNotAllowed):
        return Response(
            {"detail": str(exc), "code": "transition_not_allowed", "allowed": sorted(exc.allowed)},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DomainConflict):
        return Response({"detail": str(exc), "code": "conflict"}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, StaleVersion):
        return Response(
            {"detail": str(exc), "code": "precondition_failed"},
            status=status.HTTP_412_PRECONDITION_FAILED,
            headers={"ETag": exc.current_etag},
        )
    if isinstance(exc, NotReady):
        return Response({"detail": str(exc), "code": "not_ready"}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, InvalidInput):
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, NotPermitted):
        return Response({"detail": str(exc), "code": "permission_denied"}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, ProtectedError | RestrictedError):
        names = sorted({obj._meta.verbose_name_plural for obj in exc.args[1]}) if len(exc.args) > 1 else []
        return Response(
            {"detail": f"Still in use by {', '.join(str(n) for n in names) or 'other records'}.", "code": "in_use"},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IntegrityError):
        # A unique constraint lost a race that validation could not see: the client may retry.
        logger.info("integrity error mapped to 409: %s", exc)
        return Response(
            {"detail": "This conflicts with existing data.", "code": "conflict"}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable: %s", exc)
        return Response(
            {"detail": DATABASE_DOWN, "code": "database_unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        # One shape for every non-field error: {"detail", "code"}.
        response.data.setdefault("code", getattr(response.data["detail"], "code", None) or _code_of(exc))
    return response


def _code_of(exc: Exception) -> str:
    return str(getattr(exc, "default_code", "error"))


def _json_error(detail: str, code: str, status_code: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status_code)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, UploadTooLarge):
        return _json_error(str(exception), "request_too_large", 413)
    if isinstance(exception, RequestDataTooBig):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE as a SuspiciousOperation: say what was wrong.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _json_error(f"The request body is larger than {limit} bytes.", "request_too_large", 413)
    return _json_error("Bad request.", "bad_request", 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error("You do not have permission to perform this action.", "permission_denied", 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error("Not found.", "not_found", 404)


def server_error(request: HttpRequest) -> JsonResponse:
    # Called inside Django's exception handling, so the exception that got here is still current.
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable_response()
    return _json_error("Internal server error. It has been logged.", "server_error", 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: a form post without its CSRF cookie (the admin) gets JSON too, never Django's HTML page."""
    return _json_error(f"CSRF verification failed: {reason}".strip().rstrip(":"), "csrf_failed", 403)


@csrf_exempt  # an unknown URL is a 404 whatever the method; CSRF would answer a POST with 403 first
def not_found_view(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return page_not_found(request)


__all__ = ["Conflict", "Http404", "PermissionDenied", "PreconditionRequired", "exception_handler"]
