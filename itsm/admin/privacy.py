"""The user list's personal data actions (docs/runbooks/personal-data-request.md): download what the platform holds
about a person as JSON, and erase a person after a confirmation page that asks whether their comments' text stays."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from itsm.queries.privacy import personal_data_export
from itsm.services.privacy import PersonalDataRefused, personal_data_erase

ONE_PERSON = "Select exactly one person: a personal data request is about one person."


class EraseForm(forms.Form):
    comments = forms.ChoiceField(
        label="Their comments",
        choices=[
            ("keep", "Keep the text (names and addresses in it are replaced)"),
            ("blank", "Blank the text (the comments stay, empty, in the history)"),
        ],
        widget=forms.RadioSelect,
    )


def _one_person(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
    """The one person selected, or None with the message saying to select exactly one."""
    people = list(queryset[:2])
    if len(people) != 1:
        modeladmin.message_user(request, ONE_PERSON, messages.ERROR)
        return None
    return people[0]


@admin.action(description="Export the personal data of the selected person (JSON)")
def export_personal_data(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> HttpResponse | None:
    person = _one_person(modeladmin, request, queryset)
    if person is None:
        return None
    text = json.dumps(personal_data_export(person), indent=2, ensure_ascii=False)
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="personal-data-{person.pk}.json"'
    return response


@admin.action(description="Erase the selected person (pseudonymise; cannot be undone)")
def erase_personal_data(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> HttpResponse | None:
    person = _one_person(modeladmin, request, queryset)
    if person is None:
        return None
    form = EraseForm(request.POST if "erase" in request.POST else None)
    if "erase" in request.POST and form.is_valid():
        username = person.get_username()
        try:
            erasure = personal_data_erase(
                user=person, comments=form.cleaned_data["comments"], source="admin", actor=request.user
            )
        except PersonalDataRefused as exc:
            modeladmin.message_user(request, f"{exc} Nothing was erased.", messages.ERROR)
            return None
        if erasure.already_erased:
            modeladmin.message_user(request, f"{username} was erased before: nothing to do.", messages.INFO)
        else:
            modeladmin.message_user(request, f"Erased {username}: now {erasure.pseudonym}.", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Erase a person",
        "person": person,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "form": form,
        "action": request.POST.get("action", "erase_personal_data"),
        "opts": modeladmin.model._meta,
    }
    return render(request, "admin/itsm/privacy/erase_confirmation.html", context)
