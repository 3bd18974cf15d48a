"""The public status page (`/status/`, `/status.json`): no login, nothing internal.

Each service is under maintenance (a window in progress or verifying), in an outage (an open critical
incident), degraded (any other open incident) or operational. What is shown is the public view of
itsm.queries.status.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from itsm.queries.status import STATE_LABELS, status_summary
from itsm.replica import reads_from_replica


@require_safe
@reads_from_replica
def status_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(status_summary())


@require_safe
@reads_from_replica
def status_html(request: HttpRequest) -> HttpResponse:
    summary = status_summary()
    overall = "operational"
    for state in ("outage", "degraded", "maintenance"):
        if any(service["state"] == state for service in summary["services"]):
            overall = state
            break
    for item in [*summary["incidents"], *summary["maintenance"]]:
        for name in ("updated_at", "starts_at", "ends_at"):
            if item.get(name):
                item[f"{name}_display"] = _display(item[name])
        if item.get("latest_update"):
            item["latest_update"] = {**item["latest_update"], "at_display": _display(item["latest_update"]["at"])}
    return render(
        request,
        "itsm/status.html",
        {
            **summary,
            "overall": overall,
            "overall_label": STATE_LABELS[overall],
            "now": _display(summary["generated_at"]),
        },
    )


def _display(iso: str) -> str:
    return f"{datetime.fromisoformat(iso).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
