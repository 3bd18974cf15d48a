"""The ticket list as the agents' queues: the saved queues an agent opens in one click (?queue=mine, unassigned,
at_risk, breached, pending; the same links as the admin index's numbers), and the bulk actions that work a selection
through the ticket service, one event each: assign, move to a state (refusals listed per ticket), change priority."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from itsm.admin.base import staff_users
from itsm.admin.desk import REFUSALS, refusal_text
from itsm.admin.events import move_selected
from itsm.models import Ticket
from itsm.queries.desk import QUEUES, queue_counts, queue_q
from itsm.services.tickets import ticket_transition, ticket_update

BULK_PREVIEW = 20


class QueueFilter(admin.SimpleListFilter):
    """A saved queue, for the agent who opens it (mine and unassigned in my teams depend on who asks)."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(QUEUES.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        value = self.value()
        return queryset.filter(queue_q(value, request.user)) if value in QUEUES else queryset


def queue_tabs(request: HttpRequest) -> list[dict[str, Any]]:
    """The queues above the ticket list, each with its count and whether it is the one open (one statement)."""
    current, counts = request.GET.get("queue"), queue_counts(request.user)
    return [
        {"name": name, "label": label, "count": counts[name], "active": name == current}
        for name, label in QUEUES.items()
    ]


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=staff_users())


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Ticket.Priority.choices)


class MoveSelectedForm(forms.Form):
    to = forms.ChoiceField(label="Move to", choices=Ticket.Status.choices)
    note = forms.CharField(label="Note (optional, on each ticket's timeline)", required=False, max_length=2000)


def _bulk(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Ticket],
    form_class: type[forms.Form],
    title: str,
    apply: Callable[[list[int], dict[str, Any]], None],
) -> HttpResponse | None:
    """Ask for the new value on an intermediate page, then apply it to each selected ticket."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        # Listed first: the queryset may filter on the very field being changed.
        apply(list(queryset.values_list("id", flat=True)), form.cleaned_data)
        return None
    select_across = request.POST.get("select_across") == "1"
    count = queryset.count()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "count": count,
        "preview": queryset[:BULK_PREVIEW],
        "more": max(count - BULK_PREVIEW, 0),
        # "All N matching tickets" is sent back as the flag, not as N ids (Django refuses over 1,000 fields).
        "select_across": select_across,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME)[:1]
        if select_across
        else queryset.values_list("id", flat=True),
        "action": request.POST["action"],
        "opts": modeladmin.model._meta,
    }
    return render(request, "admin/itsm/ticket/bulk_change.html", context)


def _update_each(modeladmin: admin.ModelAdmin, request: HttpRequest, ids: list[int], changes: dict[str, Any]) -> None:
    updated, refused = 0, []
    for ticket_id in ids:
        try:
            ticket_update(ticket_id=ticket_id, actor=request.user, expected_version=None, changes=changes)
        except Ticket.DoesNotExist:
            continue  # deleted by someone else meanwhile
        except REFUSALS as exc:
            refused.append(f"#{ticket_id}: {refusal_text(exc)}")
            continue
        updated += 1
    modeladmin.message_user(request, f"Updated {updated} tickets.", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.WARNING)


@admin.action(description="Assign selected tickets to an agent")
def assign(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
    def apply(ids: list[int], data: dict[str, Any]) -> None:
        _update_each(modeladmin, request, ids, {"assignee": data["assignee"]})

    return _bulk(modeladmin, request, queryset, AssignForm, "Assign tickets", apply)


@admin.action(description="Move selected tickets to another state")
def move(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
    def apply(ids: list[int], data: dict[str, Any]) -> None:
        def one(ticket_id: int) -> None:
            ticket_transition(ticket_id=ticket_id, actor=request.user, to=data["to"], note=data["note"])

        move_selected(modeladmin, request, ids, to=data["to"], move=one, noun="ticket", label="#")

    return _bulk(modeladmin, request, queryset, MoveSelectedForm, "Move tickets", apply)


@admin.action(description="Change the priority of selected tickets")
def change_priority(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Ticket]
) -> HttpResponse | None:
    def apply(ids: list[int], data: dict[str, Any]) -> None:
        _update_each(modeladmin, request, ids, {"priority": data["priority"]})

    return _bulk(modeladmin, request, queryset, PriorityForm, "Change priority", apply)
