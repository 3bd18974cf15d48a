"""The admin site of the platform: Django's, with an index that opens with the agent's desk (their queues' counts
and the open incidents by severity, each linking to its list). Installed as the default site by
`itsm.apps.DeskAdminConfig`, so every `@admin.register` of itsm/admin/ lands here.

It sits beside the itsm/admin/ package, not in it: Django builds the default site on the first registration, and
importing a module of the package runs the package's registrations first, which would build a second site.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from itsm.queries.desk import QUEUES, desk_numbers
from itsm.roles import is_staff_role
from itsm.services.single_sign_on import logout_url, sign_in_context
from itsm.services.two_factor import second_factor_enrolled, second_factor_required
from itsm.sign_in import AdminSignInForm

# The admin pages an admin who must set up two factors may still open.
ENROLMENT_PAGES = {"two-factor", "logout"}


def second_factor_state(request: HttpRequest) -> str:
    """This session's standing for the admin, read once per request:
    `provider` (signed in through OpenID Connect: the provider asks for the second factor), `verified` (signed in
    with a code), `unverified` (the user has a second factor, this session was not signed in with it), `missing`
    (an admin who must set one up, ITSM_REQUIRE_2FA_FOR_ADMINS) or `none` (not asked for)."""
    cached = getattr(request, "_itsm_second_factor", None)
    if cached is not None:
        return str(cached)
    user = request.user
    if sign_in_context(request)["sign_in"]["provider_session"]:
        state = "provider"
    elif getattr(user, "otp_device", None) is not None:
        state = "verified"
    elif second_factor_enrolled(user):
        state = "unverified"
    else:
        state = "missing" if second_factor_required(user) else "none"
    request._itsm_second_factor = state  # type: ignore[attr-defined]
    return state


class DeskAdminSite(admin.AdminSite):
    site_header = "ITSM Platform"
    site_title = "ITSM Platform"
    index_title = "The desk"
    index_template = "admin/itsm/index.html"
    # The desk's pages (a ticket's thread beside its moves, the ticket list with its filters) need the width the
    # navigation sidebar takes; the index and the breadcrumbs lead everywhere it did.
    enable_nav_sidebar = False
    # The password checked under the API's and the portal's limits (itsm.services.logins).
    login_form = AdminSignInForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._pages: list[tuple[str, Callable[..., Any], str]] = []

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().login(request, extra_context)
        form = getattr(response, "context_data", None) and response.context_data.get("form")  # type: ignore[attr-defined]
        throttled = getattr(form, "throttled", None)
        if throttled is not None:
            response.status_code = 429
            response["Retry-After"] = str(throttled.retry_after)
        return response

    # With the single sign-on button (itsm/portal/single_sign_on.py), and without the password form when neither
    # local accounts nor a directory sign in.
    login_template = "admin/itsm/login.html"

    def logout(  # type: ignore[override]  # a redirect to the provider, not the template
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A session from single sign-on ends at the provider too, when it offers that (RP-initiated logout)."""
        provider = logout_url(request) if sign_in_context(request)["sign_in"]["provider_session"] else None
        response = super().logout(request, extra_context)
        if provider and request.method == "POST":
            return HttpResponseRedirect(provider)
        return response

    def has_permission(self, request: HttpRequest) -> bool:
        """Staff, and signed in with their second factor when they have one: a session signed in without it (in the
        portal before the code was asked there, or before the user set one up elsewhere) is sent to sign in again."""
        return super().has_permission(request) and second_factor_state(request) != "unverified"

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        """Django's guard, then: an admin who must set up two factors reaches only the page that sets them up (and
        the log-out) until they have."""
        guarded = super().admin_view(view, cacheable)

        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            match = request.resolver_match
            if (
                self.has_permission(request)
                and second_factor_state(request) == "missing"
                and (match is None or match.url_name not in ENROLMENT_PAGES)
            ):
                return HttpResponseRedirect(reverse(f"{self.name}:two-factor"))
            return guarded(request, *args, **kwargs)

        return update_wrapper(inner, view)

    def register_page(self, route: str, view: Callable[..., Any], name: str) -> None:
        """A page of the site that belongs to no model (the two factors' page of itsm/admin/two_factor.py),
        registered by its module like a ModelAdmin, and guarded like every admin page."""
        self._pages.append((route, view, name))

    def get_urls(self) -> list[Any]:
        pages: list[URLPattern] = [path(route, self.admin_view(view), name=name) for route, view, name in self._pages]
        return pages + super().get_urls()

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = dict(extra_context or {})
        if is_staff_role(request.user):
            context["desk"] = desk_index(request.user, self.name)
        return super().index(request, context)


def desk_index(user: Any, site: str) -> dict[str, Any]:
    """The numbers and where each leads: a ticket queue, or the open incidents of one severity."""
    numbers = desk_numbers(user)
    tickets = reverse(f"{site}:itsm_ticket_changelist")
    incidents = reverse(f"{site}:itsm_incident_changelist")
    return {
        "queues": [
            {"name": name, "label": label, "count": numbers.queues[name], "url": f"{tickets}?queue={name}"}
            for name, label in QUEUES.items()
        ],
        "incidents": [
            {"severity": severity, "count": count, "url": f"{incidents}?state=open&severity__exact={severity}"}
            for severity, count in numbers.incidents.items()
        ],
        "incidents_url": f"{incidents}?state=open",
    }
