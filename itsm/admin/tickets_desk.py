"""A ticket's admin page as the agent's desk: the conversation as one thread, the reply box (public reply or internal
note, with files), the moves the lifecycle allows from the current status, "assign to me", and the SLA clocks with
the time left. Every write is one service call, the same as the API's (itsm.admin.desk says how a post is handled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, reverse
from django.utils import timezone

from itsm.admin.desk import (
    change_url,
    desk_action_urls,
    desk_urls,
    form_for,
    refusal_text,
    refuse_form,
    run,
    span,
    when,
)
from itsm.admin.events import describe
from itsm.exceptions import InvalidInput
from itsm.lifecycles import TICKET_TRANSITIONS
from itsm.models import Ticket
from itsm.queries.desk import ticket_thread
from itsm.services.attachments import attachment_check, attachment_create
from itsm.services.tickets import comment_create, ticket_transition, ticket_update

# The button of each move, in the lifecycle's order (a ticket page offers those its current status allows).
MOVE_LABELS = {
    Ticket.Status.OPEN: "Open",
    Ticket.Status.IN_PROGRESS: "Start work",
    Ticket.Status.PENDING: "Wait on requester",
    Ticket.Status.RESOLVED: "Resolve",
    Ticket.Status.CLOSED: "Close",
}
# The same move reads differently from some states.
FROM_LABELS = {
    (Ticket.Status.IN_PROGRESS, Ticket.Status.OPEN): "Back to open",
    (Ticket.Status.RESOLVED, Ticket.Status.OPEN): "Reopen",
    (Ticket.Status.PENDING, Ticket.Status.IN_PROGRESS): "Resume work",
}
VISIBILITY = [("public", "Public reply (the requester reads it)"), ("internal", "Internal note (agents only)")]


class ReplyForm(forms.Form):
    body = forms.CharField(label="Message", widget=forms.Textarea(attrs={"rows": 5}), max_length=20000)
    visibility = forms.ChoiceField(label="Send as", choices=VISIBILITY, initial="public", widget=forms.RadioSelect)


class MoveForm(forms.Form):
    to = forms.ChoiceField(label="Move to", choices=Ticket.Status.choices)
    note = forms.CharField(
        label="Note (optional, on the timeline)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def reply(modeladmin: admin.ModelAdmin, request: HttpRequest, ticket: Ticket) -> HttpResponse:
    """comment_create, then attachment_create for each file on that comment; every file is checked first, so a
    refused file refuses the whole post and nothing is written."""
    back = change_url(modeladmin, ticket.pk) + "#reply"
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, back, ticket, "reply", form)
    uploads = request.FILES.getlist("files")
    try:
        for upload in uploads:
            attachment_check(filename=upload.name or "", content_type=upload.content_type or "", data=upload)
    except InvalidInput as exc:
        form.add_error(None, f"{upload.name}: {refusal_text(exc)} Choose the files again.")
        return refuse_form(request, back, ticket, "reply", form)
    internal = form.cleaned_data["visibility"] == "internal"

    def call() -> str:
        comment = comment_create(
            ticket_id=ticket.pk, author=request.user, body=form.cleaned_data["body"], internal=internal
        )
        for upload in uploads:
            attachment_create(
                ticket=ticket,
                uploaded_by=request.user,
                filename=upload.name or "",
                content_type=upload.content_type or "",
                data=upload,
                comment=comment,
            )
        files = f" with {len(uploads)} file{'s' if len(uploads) > 1 else ''}" if uploads else ""
        return f"Internal note added{files}." if internal else f"Reply sent to the requester{files}."

    return run(request, back, call, draft=(ticket, "reply"))


def move(modeladmin: admin.ModelAdmin, request: HttpRequest, ticket: Ticket) -> HttpResponse:
    back = change_url(modeladmin, ticket.pk)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, back, ticket, "move", form)
    to = form.cleaned_data["to"]

    def call() -> str:
        moved = ticket_transition(ticket_id=ticket.pk, actor=request.user, to=to, note=form.cleaned_data["note"])
        return f"Ticket #{moved.pk} is {moved.get_status_display().lower()}."

    return run(request, back, call, draft=(ticket, "move"))


def assign_to_me(modeladmin: admin.ModelAdmin, request: HttpRequest, ticket: Ticket) -> HttpResponse:
    def call() -> str:
        ticket_update(
            ticket_id=ticket.pk, actor=request.user, expected_version=None, changes={"assignee": request.user}
        )
        return f"Ticket #{ticket.pk} is assigned to you."

    return run(request, change_url(modeladmin, ticket.pk), call)


VIEWS = {"reply": reply, "move": move, "assign-to-me": assign_to_me}


def ticket_desk_urls(modeladmin: admin.ModelAdmin) -> list[URLPattern]:
    return desk_urls(modeladmin, VIEWS)


@dataclass(frozen=True)
class Clock:
    """One SLA target as the desk shows it: `state` is met, late, running, overdue or paused."""

    name: str
    state: str
    text: str


def _clock(name: str, due: datetime | None, done: datetime | None, now: datetime) -> Clock:
    if done is not None:
        if due is not None and done > due:
            return Clock(name, "late", f"done {when(done)}, {span(done - due)} late")
        return Clock(name, "met", f"done {when(done)}")
    if due is None:
        return Clock(name, "paused", "paused: the clock stops while the ticket waits")
    if due <= now:
        return Clock(name, "overdue", f"due {when(due)}, overdue by {span(now - due)}")
    return Clock(name, "running", f"due {when(due)}, {span(due - now)} left")


def sla_clocks(ticket: Ticket, now: datetime) -> list[Clock]:
    """First response (an agent's first public reply, or the resolution if it came first) and resolution."""
    responded = ticket.first_response_at or ticket.resolved_at
    return [
        _clock("First response", ticket.response_due_at, responded, now),
        _clock("Resolution", ticket.resolution_due_at, ticket.resolved_at, now),
    ]


def ticket_desk_context(modeladmin: admin.ModelAdmin, request: HttpRequest, ticket: Ticket) -> dict[str, Any]:
    """What the ticket's change page shows above its edit form."""
    now = timezone.now()
    thread = ticket_thread(request.user, ticket)
    for entry in thread:
        if entry.event is not None:
            entry.text = describe(entry.event)
        for attachment in entry.attachments:
            # Through the API's download: the same visibility check, and never shown inline as a page.
            attachment.download_url = reverse("attachment-download", args=[attachment.pk])  # type: ignore[attr-defined]
    allowed = TICKET_TRANSITIONS[ticket.status]
    at_risk = ticket.sla_at_risk_at if ticket.sla_status == Ticket.SlaStatus.OK else None
    return {
        "ticket": ticket,
        "thread": thread,
        "moves": [
            (status, FROM_LABELS.get((Ticket.Status(ticket.status), status), label))
            for status, label in MOVE_LABELS.items()
            if status in allowed
        ],
        "clocks": sla_clocks(ticket, now),
        "at_risk_from": when(at_risk) if at_risk and at_risk > now else "",
        "mine": ticket.assignee_id == request.user.pk,
        "reply_form": form_for(request, ticket, "reply", ReplyForm),
        "move_form": form_for(request, ticket, "move", MoveForm),
        "urls": desk_action_urls(modeladmin, ticket.pk, list(VIEWS)),
    }
