"""The middleware of read-only mode (see itsm.services.readonly): writes get a JSON 503, reads go on."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from itsm.services.readonly import read_only_state

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
RETRY_AFTER_SECONDS = "60"


class ReadOnlyModeMiddleware:
    """Answers POST, PUT, PATCH and DELETE with 503 while read-only mode is on. Only writes look at the flag."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            state = read_only_state()
            if state is not None:
                response = JsonResponse(
                    {
                        "detail": "The platform is read-only while it is being restored. Retry later.",
                        "code": "read_only_mode",
                        "reason": state.get("reason", ""),
                        "since": state.get("since"),
                    },
                    status=503,
                )
                response["Retry-After"] = RETRY_AFTER_SECONDS
                return response
        return self.get_response(request)
