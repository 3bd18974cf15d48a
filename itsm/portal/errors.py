"""HTML error pages for the portal's paths (itsm_project/errors.py sends /portal/ here, everything else to the
API's JSON errors). The page needs no database: it renders when the database is what failed."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from itsm.uploads import UploadTooLarge


def error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "portal/error.html", {"title": title, "message": message, "bare": True}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, UploadTooLarge | RequestDataTooBig):
        return error_page(
            request,
            413,
            _("The files are too large"),
            _("What you sent is larger than the portal takes at once. Each file may have at most %(limit)s.")
            % {"limit": filesizeformat(settings.ITSM_ATTACHMENT_MAX_BYTES)},
        )
    return error_page(request, 400, _("Bad request"), _("The portal could not read this request."))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 403, _("Not allowed"), _("You may not do this."))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(
        request,
        404,
        _("Page not found"),
        _("There is no such page, or it is not yours to see. Your tickets are listed under My tickets."),
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return error_page(
        request, 500, _("Something went wrong"), _("The error has been logged. Please try again in a moment.")
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_page(
        request,
        403,
        _("The form has expired"),
        _("Go back, reload the page and send the form again. Cookies must be allowed for this site."),
    )
