"""A maintenance window's admin page: the moves people make (start now, complete early, re-run failed checks, accept
the outcome, cancel or abort, retry a blocked window) as buttons, only those the lifecycle allows from the current
state, each through maintenance_transition; and the window's checklist with how far it got."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from itsm.admin.desk import change_url, desk_action_urls, desk_urls, refuse_form, run
from itsm.lifecycles import MAINTENANCE_TRANSITIONS
from itsm.models import MaintenanceWindow
from itsm.queries.maintenance import window_checklist
from itsm.services.maintenance_lifecycle import maintenance_transition

Status = MaintenanceWindow.Status

# The moves people make, by target; `blocked` and `verification_failed` are the verdicts of the start gate and of
# the checks, never a button.
MOVE_LABELS = {
    Status.IN_PROGRESS: "Start now",
    Status.VERIFYING: "Complete early (verify now)",
    Status.COMPLETED: "Mark completed",
    Status.SCHEDULED: "Retry (schedule again)",
    Status.CANCELLED: "Cancel",
}
# The same move reads differently from some states.
FROM_LABELS = {
    (Status.VERIFICATION_FAILED, Status.VERIFYING): "Re-run the checks",
    (Status.VERIFICATION_FAILED, Status.COMPLETED): "Accept and complete",
    (Status.VERIFYING, Status.COMPLETED): "Complete now (stop verifying)",
    (Status.IN_PROGRESS, Status.CANCELLED): "Abort (cancel, no verification)",
}


class WindowMoveForm(forms.Form):
    to = forms.ChoiceField(label="Move to", choices=Status.choices)
    # The version the page was read at: a move after someone else's change is refused with a message, as the API's
    # If-Match is (itsm/models/versioned.py). Absent: not checked.
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)


def move(modeladmin: admin.ModelAdmin, request: HttpRequest, window: MaintenanceWindow) -> HttpResponse:
    back = change_url(modeladmin, window.pk)
    form = WindowMoveForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, back, window, "move", form)

    def call() -> str:
        moved = maintenance_transition(
            window_id=window.pk,
            actor=request.user,
            to=form.cleaned_data["to"],
            expected_version=form.cleaned_data["version"],
        )
        reason = f" {moved.blocked_reason}" if moved.status == Status.BLOCKED else ""
        return f"MW-{moved.pk} is {moved.get_status_display().lower()}.{reason}"

    return run(request, back, call)


VIEWS = {"move": move}


def maintenance_desk_urls(modeladmin: admin.ModelAdmin) -> list[URLPattern]:
    return desk_urls(modeladmin, VIEWS)


def maintenance_desk_context(
    modeladmin: admin.ModelAdmin, request: HttpRequest, window: MaintenanceWindow
) -> dict[str, Any]:
    allowed = MAINTENANCE_TRANSITIONS[window.status]
    return {
        "window": window,
        "moves": [
            (to, FROM_LABELS.get((Status(window.status), to), label))
            for to, label in MOVE_LABELS.items()
            if to in allowed
        ],
        "checklist": window_checklist(window),
        "urls": desk_action_urls(modeladmin, window.pk, list(VIEWS)),
    }
