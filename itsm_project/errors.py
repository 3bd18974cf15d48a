"""Django's error handlers and CSRF failure view: HTML pages under /portal/ (itsm.portal.errors), JSON everywhere
else (itsm.api.errors). The one module that knows both faces, as the URLconf does."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from itsm.api import errors as api
from itsm.portal import errors as portal
from itsm.uploads import PORTAL_PREFIX


def _portal(request: HttpRequest) -> bool:
    return request.path_info.startswith(PORTAL_PREFIX)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return (portal.bad_request if _portal(request) else api.bad_request)(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return (portal.permission_denied if _portal(request) else api.permission_denied)(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return (portal.page_not_found if _portal(request) else api.page_not_found)(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    return (portal.server_error if _portal(request) else api.server_error)(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return (portal.csrf_failure if _portal(request) else api.csrf_failure)(request, reason)
