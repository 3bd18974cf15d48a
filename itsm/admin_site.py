"""The admin site of the platform: Django's, with an index that opens with the agent's desk (their queues' counts
and the open incidents by severity, each linking to its list). Installed as the default site by
`itsm.apps.DeskAdminConfig`, so every `@admin.register` of itsm/admin/ lands here.

It sits beside the itsm/admin/ package, not in it: Django builds the default site on the first registration, and
importing a module of the package runs the package's registrations first, which would build a second site.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from itsm.queries.desk import QUEUES, desk_numbers
from itsm.roles import is_staff_role
from itsm.services.single_sign_on import logout_url, sign_in_context
from itsm.sign_in import AdminSignInForm


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
