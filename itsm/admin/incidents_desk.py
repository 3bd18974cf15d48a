"""An incident's admin page as the commander's desk: the lifecycle moves the table allows from the current state, the
timeline with its "add note" box (an internal note or a public status update), "page again", and the post-mortem
edited in place with its action items. Every write is one service call, as in the API (itsm.admin.desk says how a
post is handled)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.utils.datastructures import MultiValueDict

from itsm.admin.base import staff_users
from itsm.admin.desk import change_url, desk_action_urls, desk_urls, form_for, refuse_form, run, when
from itsm.admin.events import describe
from itsm.lifecycles import INCIDENT_CLOSED_STATUSES, INCIDENT_TRANSITIONS
from itsm.models import Event, Incident, Postmortem, Ticket
from itsm.models.incidents import POSTMORTEM_FIELDS
from itsm.queries.incidents import incident_timeline_visible_to
from itsm.services.incidents import (
    incident_note,
    incident_status_update,
    incident_transition,
    postmortem_add_action_item,
    postmortem_save,
)
from itsm.services.paging import incident_page_again

# The button of each move, in the lifecycle's order; going back to diagnosing from resolved is a reopen.
MOVE_LABELS = {
    Incident.Status.ACKNOWLEDGED: "Acknowledge",
    Incident.Status.DIAGNOSING: "Diagnose",
    Incident.Status.MITIGATING: "Mitigate",
    Incident.Status.RESOLVED: "Resolve",
    Incident.Status.REVIEWED: "Mark reviewed",
}
REOPEN_LABEL = "Reopen (diagnosing)"
NOTE_KINDS = [("internal", "Internal note (agents only)"), ("public", "Public status update (on the status page)")]
SECTION_HELP = {
    "summary": "What happened, in two sentences.",
    "impact": "Who was affected, how, for how long.",
    "root_cause": "Why it happened.",
    "resolution": "What ended it.",
}


# The version the page was read at (itsm/models/versioned.py): a move or a post-mortem saved after someone else's
# change is refused with a message (the draft kept), as the API's If-Match is. Absent: not checked.
VERSION = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)


class IncidentMoveForm(forms.Form):
    to = forms.ChoiceField(label="Move to", choices=Incident.Status.choices)
    version = VERSION
    note = forms.CharField(
        label="Note (optional, on the timeline)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class NoteForm(forms.Form):
    body = forms.CharField(label="Note", widget=forms.Textarea(attrs={"rows": 3}), max_length=10000)
    kind = forms.ChoiceField(label="Post as", choices=NOTE_KINDS, initial="internal", widget=forms.RadioSelect)


class PostmortemForm(forms.Form):
    status = forms.ChoiceField(choices=Postmortem.Status.choices, initial=Postmortem.Status.DRAFT)
    version = VERSION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in POSTMORTEM_FIELDS:
            self.fields[name] = forms.CharField(
                label=name.replace("_", " ").capitalize(),
                required=False,
                max_length=20000,
                widget=forms.Textarea(attrs={"rows": 3}),
                help_text=SECTION_HELP.get(name, ""),
            )
        self.order_fields([*POSTMORTEM_FIELDS, "status"])


class ActionItemForm(forms.Form):
    title = forms.CharField(
        label="Action item", max_length=200, widget=forms.TextInput(attrs={"placeholder": "What will change"})
    )
    priority = forms.ChoiceField(
        choices=Ticket.Priority.choices,
        initial=Ticket.Priority.MEDIUM,
        widget=forms.Select(attrs={"aria-label": "Priority"}),
    )
    assignee = forms.ModelChoiceField(
        queryset=staff_users(),
        required=False,
        empty_label="unassigned",
        widget=forms.Select(attrs={"aria-label": "Assignee"}),
    )


def move(modeladmin: admin.ModelAdmin, request: HttpRequest, incident: Incident) -> HttpResponse:
    back = change_url(modeladmin, incident.pk)
    form = IncidentMoveForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, back, incident, "move", form)

    def call() -> str:
        moved = incident_transition(
            incident_id=incident.pk,
            actor=request.user,
            to=form.cleaned_data["to"],
            note=form.cleaned_data["note"],
            expected_version=form.cleaned_data["version"],
        )
        return f"INC-{moved.pk} is {moved.status}."

    return run(request, back, call, draft=(incident, "move"))


def note(modeladmin: admin.ModelAdmin, request: HttpRequest, incident: Incident) -> HttpResponse:
    back = change_url(modeladmin, incident.pk) + "#timeline"
    form = NoteForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, back, incident, "note", form)
    public = form.cleaned_data["kind"] == "public"

    def call() -> str:
        post = incident_status_update if public else incident_note
        post(incident_id=incident.pk, actor=request.user, body=form.cleaned_data["body"])
        return "Public status update posted." if public else "Internal note added."

    return run(request, back, call, draft=(incident, "note"))


def postmortem(modeladmin: admin.ModelAdmin, request: HttpRequest, incident: Incident) -> HttpResponse:
    back = change_url(modeladmin, incident.pk) + "#postmortem"
    form = PostmortemForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, back, incident, "postmortem", form)

    def call() -> str:
        data = dict(form.cleaned_data)
        version = data.pop("version")
        saved = postmortem_save(incident_id=incident.pk, actor=request.user, data=data, expected_version=version)
        return f"Post-mortem saved ({saved.status})."

    return run(request, back, call, draft=(incident, "postmortem"))


def action_item(modeladmin: admin.ModelAdmin, request: HttpRequest, incident: Incident) -> HttpResponse:
    back = change_url(modeladmin, incident.pk) + "#postmortem"
    form = ActionItemForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, back, incident, "action_item", form)

    def call() -> str:
        ticket = postmortem_add_action_item(incident_id=incident.pk, actor=request.user, **form.cleaned_data)
        return f"Action item #{ticket.pk} added."

    return run(request, back, call, draft=(incident, "action_item"))


def page_again(modeladmin: admin.ModelAdmin, request: HttpRequest, incident: Incident) -> HttpResponse:
    def call() -> str:
        paged = incident_page_again(incident_id=incident.pk, actor=request.user)
        return f"Paged again: {', '.join(user.get_username() for user in paged)}."

    return run(request, change_url(modeladmin, incident.pk), call)


VIEWS = {"move": move, "note": note, "postmortem": postmortem, "action-item": action_item, "page-again": page_again}


def incident_desk_urls(modeladmin: admin.ModelAdmin) -> list[URLPattern]:
    return desk_urls(modeladmin, VIEWS)


def _moves(incident: Incident) -> list[tuple[str, str]]:
    allowed = INCIDENT_TRANSITIONS[incident.status]
    reopen = incident.status == Incident.Status.RESOLVED
    return [
        (status, REOPEN_LABEL if reopen and status == Incident.Status.DIAGNOSING else label)
        for status, label in MOVE_LABELS.items()
        if status in allowed
    ]


def incident_desk_context(modeladmin: admin.ModelAdmin, request: HttpRequest, incident: Incident) -> dict[str, Any]:
    """What the incident's change page shows above its edit form: three statements (timeline, post-mortem, its
    action items) whatever their length."""
    timeline = list(incident_timeline_visible_to(request.user, incident))
    for event in timeline:
        event.text = describe(event)  # type: ignore[attr-defined]
        event.internal_note = event.kind == Event.Kind.NOTE  # type: ignore[attr-defined]
    existing = Postmortem.objects.filter(incident=incident).first()
    items = list(existing.action_items.select_related("assignee").order_by("pk")) if existing else []
    initial = {name: getattr(existing, name) for name in (*POSTMORTEM_FIELDS, "status")} if existing else {}
    initial["version"] = existing.version if existing else 0  # 0: none written yet
    return {
        "incident": incident,
        "closed": incident.status in INCIDENT_CLOSED_STATUSES,
        "moves": _moves(incident),
        "timeline": timeline,
        "postmortem": existing,
        "postmortem_updated": when(existing.updated_at) if existing else "",
        "action_items": items,
        "move_form": _at(
            form_for(request, incident, "move", IncidentMoveForm, initial={"version": incident.version}),
            incident.version,
        ),
        "note_form": form_for(request, incident, "note", NoteForm),
        "postmortem_form": _at(
            form_for(request, incident, "postmortem", PostmortemForm, initial=initial), initial["version"]
        ),
        "action_item_form": form_for(request, incident, "action_item", ActionItemForm),
        "urls": desk_action_urls(modeladmin, incident.pk, list(VIEWS)),
    }


def _at(form: forms.Form, version: int) -> forms.Form:
    """A draft kept from a refused post carries the version it was posted with: shown again, it carries the current
    one, so that saving it again is a choice made after the refusal's message, not a loop of refusals."""
    if form.is_bound:
        data = cast(MultiValueDict, form.data).copy()  # form_for binds a draft's MultiValueDict
        data["version"] = str(version)
        form.data = data
    return form
