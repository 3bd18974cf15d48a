"""Timelines in the admin: a ticket's, an incident's or a maintenance window's events, append-only, and the bulk
"move the selected ones" actions that add to them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from itsm.admin.base import ReadOnlyInlinePermissions
from itsm.exceptions import DomainError
from itsm.lifecycles import TransitionNotAllowed
from itsm.models import Event


class EventInline(ReadOnlyInlinePermissions, admin.TabularInline):
    """The timeline of the object on the page (subclasses name which foreign key): shown, never edited here."""

    model = Event
    fields = ("created_at", "actor", "kind", "field", "old_value", "new_value", "note")
    readonly_fields = fields
    verbose_name_plural = "timeline"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).select_related("actor")


def timeline_table(events: Iterable[Event]) -> str:
    """Events as a read-only table on a change page, oldest first."""
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                event.actor.get_username() if event.actor else "(the platform)",
                event.kind,
                event.field,
                f"{event.old_value} → {event.new_value}" if event.old_value else event.new_value,
                event.note,
            )
            for event in events
        ),
    )
    header = "<tr><th>when</th><th>who</th><th>what</th><th>field</th><th>change</th><th>note</th></tr>"
    return format_html("<table>{}{}</table>", mark_safe(header), rows) if rows else "-"  # noqa: S308 (a constant)


# How a change of one field reads on a timeline, by field name; any other field reads "changed <field>".
FIELD_WORDS = {
    "first_response_at": "first response given",
    "postmortem": "post-mortem saved as {new}",
    "action_item": "action item #{new} added",
}


def describe(event: Event) -> str:
    """One timeline entry as a sentence after its actor's name: "moved it from open to pending", "assigned it to
    bob", "paged alice"."""
    old, new = event.old_value, event.new_value
    if event.kind == Event.Kind.TRANSITION:
        return f"moved it from {old} to {new}" if old else f"moved it to {new}"
    if event.kind == Event.Kind.SLA:
        return f"SLA {old} → {new}" if old else f"SLA {new}"
    if event.field == "assignee":
        return f"assigned it to {new}" if new else f"unassigned it (was {old})"
    if event.field in ("attachment", "internal_attachment") and old:
        return event.note or "removed a file"
    if event.field in FIELD_WORDS:
        return FIELD_WORDS[event.field].format(old=old, new=new)
    if event.kind == Event.Kind.CHANGED:
        return f"changed {event.field} from {old or '(empty)'} to {new or '(empty)'}"
    if event.kind == Event.Kind.PAGE:
        return f"paged {new} again" if event.actor_id else f"paged {new}"
    if event.kind == Event.Kind.ESCALATION:
        return f"escalated to {new}" if new else event.note
    if event.kind == Event.Kind.NOTIFICATION:
        return f"notified: {event.note[:1].lower()}{event.note[1:]}" if event.note else "notified"
    if event.kind == Event.Kind.CREATED:
        return "declared it" if event.incident_id else "created it"
    return f"{event.kind} {event.field} {new}".strip()


def move_selected(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    ids: list[int],
    *,
    to: str,
    move: Callable[[int], Any],
    noun: str,
    label: str,
) -> None:
    """Move each selected object through its transition service; one refusal does not stop the others, and each is
    reported beside the count of moved ones."""
    moved, refused = 0, []
    for object_id in ids:
        try:
            move(object_id)
            moved += 1
        except (DomainError, TransitionNotAllowed) as exc:
            refused.append(f"{label}{object_id}: {exc}")
        except ObjectDoesNotExist:
            refused.append(f"{label}{object_id}: deleted meanwhile.")
    if moved:
        modeladmin.message_user(request, f"{moved} {noun}(s) moved to {to}.", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.WARNING)
