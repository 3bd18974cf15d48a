"""The agents' desk in the admin: what every button and form on a ticket's, an incident's or a maintenance window's
page shares.

Each is a POST to a URL of its own under the object's page (`<id>/desk/<name>/`, added by ModelAdmin.get_urls and
wrapped by the admin site's `admin_view`: signed in as staff, CSRF checked, never cached), calls one service, and
redirects back to the page (POST-redirect-GET). A refusal, by a form or by the service, is an error message on that
page; the form's text and its field errors are kept in the session for one page view, so the form is shown again as it
was sent, with the errors beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.datastructures import MultiValueDict

from itsm.exceptions import DomainError, InvalidInput
from itsm.lifecycles import TransitionNotAllowed

# What a service raises when it refuses: shown as a message, never a 500.
REFUSALS = (DomainError, TransitionNotAllowed)

DeskView = Callable[[admin.ModelAdmin, HttpRequest, Any], HttpResponse]


class DeskPages(admin.ModelAdmin):
    """A model admin whose change page is a desk: `desk_urls_of(self)` adds the page's buttons' URLs and
    `desk_context_of(self, request, obj)` the desk's context of an existing object (tickets, incidents, windows)."""

    desk_urls_of: Callable[..., list[URLPattern]]
    desk_context_of: Callable[..., dict[str, Any]]

    def get_urls(self) -> list[URLPattern]:
        return [*self.desk_urls_of(), *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if change and obj is not None:
            context["desk"] = self.desk_context_of(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


def refusal_text(exc: Exception) -> str:
    """A refusal in the words of the service; per-field messages of InvalidInput joined into one sentence."""
    if isinstance(exc, InvalidInput):
        return " ".join(message for field_messages in exc.errors.values() for message in field_messages)
    return str(exc)


def change_url(modeladmin: admin.ModelAdmin, object_id: int) -> str:
    opts = modeladmin.model._meta
    return reverse(f"{modeladmin.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[object_id])


def _url_name(modeladmin: admin.ModelAdmin, name: str) -> str:
    opts = modeladmin.model._meta
    return f"{opts.app_label}_{opts.model_name}_desk_{name.replace('-', '_')}"


def desk_urls(modeladmin: admin.ModelAdmin, views: Mapping[str, DeskView]) -> list[URLPattern]:
    """One `<id>/desk/<name>/` route per view: POST only, the object must exist and the user may change it."""

    def route(view: DeskView) -> Callable[..., HttpResponse]:
        def wrapped(request: HttpRequest, object_id: int) -> HttpResponse:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            obj = modeladmin.get_object(request, str(object_id))
            if obj is None:
                raise Http404
            if not modeladmin.has_change_permission(request, obj):
                raise PermissionDenied
            return view(modeladmin, request, obj)

        return modeladmin.admin_site.admin_view(wrapped)

    return [
        path(f"<int:object_id>/desk/{name}/", route(view), name=_url_name(modeladmin, name))
        for name, view in views.items()
    ]


def desk_action_urls(modeladmin: admin.ModelAdmin, object_id: int, names: list[str]) -> dict[str, str]:
    """The addresses the page's forms post to, by view name (`page-again` is `page_again` in a template)."""
    site = modeladmin.admin_site.name
    return {
        name.replace("-", "_"): reverse(f"{site}:{_url_name(modeladmin, name)}", args=[object_id]) for name in names
    }


def _draft_key(obj: Any, form_name: str) -> str:
    return f"itsm-desk:{obj._meta.model_name}:{obj.pk}:{form_name}"


def run(
    request: HttpRequest,
    back: str,
    call: Callable[[], str],
    *,
    draft: tuple[Any, str] | None = None,
) -> HttpResponseRedirect:
    """Call one service: its success message, or its refusal as an error message (keeping the form's text and the
    refusal's field errors when `draft` names the object and the form), then back to the page."""
    try:
        done = call()
    except ObjectDoesNotExist:
        messages.error(request, "It no longer exists: someone deleted it meanwhile.")
    except REFUSALS as exc:
        messages.error(request, refusal_text(exc))
        if draft is not None:
            _keep(request, _draft_key(*draft), getattr(exc, "errors", {}))
    else:
        messages.success(request, done)
    return HttpResponseRedirect(back)


def refuse_form(request: HttpRequest, back: str, obj: Any, form_name: str, form: forms.Form) -> HttpResponseRedirect:
    """A form that did not validate: one message naming what is wrong, the form kept with its errors."""
    problems = [
        f"{form.fields[name].label or name}: {' '.join(map(str, errors))}"
        if name in form.fields
        else " ".join(map(str, errors))
        for name, errors in form.errors.items()
    ]
    messages.error(request, "Nothing was changed. " + " ".join(problems))
    _keep(request, _draft_key(obj, form_name), {name: [str(e) for e in errors] for name, errors in form.errors.items()})
    return HttpResponseRedirect(back)


def _keep(request: HttpRequest, key: str, errors: dict[str, list[str]]) -> None:
    data = {name: values for name, values in request.POST.lists() if name != "csrfmiddlewaretoken"}
    request.session[key] = {"data": data, "errors": {name: [str(e) for e in errs] for name, errs in errors.items()}}


def form_for(request: HttpRequest, obj: Any, form_name: str, form_class: type[forms.Form], **kwargs: Any) -> Any:
    """The page's form: blank, or as the last post left it (its text and errors, shown once)."""
    saved = request.session.pop(_draft_key(obj, form_name), None)
    if not saved:
        return form_class(**kwargs)
    form = form_class(data=MultiValueDict(saved["data"]), **kwargs)
    form.is_valid()
    for name, errors in saved["errors"].items():
        target = name if name in form.fields else None
        if (target or NON_FIELD_ERRORS) not in form.errors:  # the form found it again by itself
            form.add_error(target, errors)
    return form


def when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"


def span(delta: timedelta) -> str:
    """A duration as people say it: 2 d 3 h, 3 h 12 min, 12 min, under a minute."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min" if mins else "under a minute"
