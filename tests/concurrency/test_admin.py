"""No lost updates in the admin: a change form carries the version it was opened at, and a save after someone
else's is refused beside the form (itsm/admin/versioned.py). Two people open one object's form, both save."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django import forms
from django.db.models import Model
from django.test import Client
from django.utils import timezone

from itsm.models import NotificationChannel, Rotation, RotationMember
from itsm.services.incidents import incident_create
from itsm.services.maintenance import maintenance_create
from tests.factories import ServiceFactory, TeamFactory, make_ticket, make_user

STALE = "Someone else changed this {noun} since you opened it; reload to see their change."


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return "on" if value else None
    if isinstance(value, datetime | date | time | timedelta):
        return str(value)
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return value


def form_data(response: Any) -> dict[str, Any]:
    """What a browser posts back for the change form as shown, its inlines included."""
    data: dict[str, Any] = {}
    bound = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): management[name].value() for name in management.fields})
        bound += inline.formset.forms
    for form in bound:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field, forms.SplitDateTimeField) and value:
                moment = timezone.localtime(value) if isinstance(value, datetime) else value
                data[f"{form.add_prefix(name)}_0"], data[f"{form.add_prefix(name)}_1"] = (
                    str(moment.date()),
                    str(moment.time()),
                )
                continue
            shown = _value(value)
            if shown is not None:
                data[form.add_prefix(name)] = shown
    return data


def _errors(response: Any) -> Any:
    if not response.context:
        return response
    inlines = [inline.formset.errors for inline in response.context["inline_admin_formsets"]]
    return response.context["adminform"].form.errors, inlines, response.context.get("errors")


def incident(world: dict[str, Any]) -> tuple[Model, str, str]:
    return incident_create(actor=world["agent"], title="Mail is slow", severity="low"), "title", "incident"


def window(world: dict[str, Any]) -> tuple[Model, str, str]:
    start = timezone.now() + timedelta(days=2)
    made = maintenance_create(
        actor=world["agent"], title="Upgrade", starts_at=start, ends_at=start + timedelta(hours=1), checks=[]
    )
    return made, "title", "maintenance window"


def service(world: dict[str, Any]) -> tuple[Model, str, str]:
    return ServiceFactory.create(), "description", "service"


def team(world: dict[str, Any]) -> tuple[Model, str, str]:
    return TeamFactory.create(), "name", "team"


def rotation(world: dict[str, Any]) -> tuple[Model, str, str]:
    made = Rotation.objects.create(team=TeamFactory.create(), name="Primary", start_date=date(2026, 1, 5))
    RotationMember.objects.create(rotation=made, user=world["agent"], position=0)
    return made, "name", "rotation"


def channel(world: dict[str, Any]) -> tuple[Model, str, str]:
    made = NotificationChannel.objects.create(user=world["agent"], channel="email", target="alice@example.com")
    return made, "target", "notification channel"


def ticket(world: dict[str, Any]) -> tuple[Model, str, str]:
    return make_ticket(world["requester"]), "title", "ticket"


OBJECTS: list[Callable[[dict[str, Any]], tuple[Model, str, str]]] = [
    incident,
    window,
    service,
    team,
    rotation,
    channel,
    ticket,
]


@pytest.mark.parametrize("make", OBJECTS, ids=[make.__name__ for make in OBJECTS])
def test_the_second_of_two_saves_from_one_version_is_refused_with_a_message_and_writes_nothing(
    make: Callable[[dict[str, Any]], tuple[Model, str, str]], operator: Client, agent: Any, requester: Any
) -> None:
    row, field, noun = make({"agent": agent, "requester": requester})
    other = Client()
    other.force_login(make_user("second-admin", "admin"))
    url = f"/admin/itsm/{row._meta.model_name}/{row.pk}/change/"
    first_form, second_form = operator.get(url), other.get(url)
    assert first_form.status_code == second_form.status_code == 200
    first, second = form_data(first_form), form_data(second_form)
    first[field] = "first@example.com" if field == "target" else "First"
    second[field] = "second@example.com" if field == "target" else "Second"

    saved = operator.post(url, first)
    assert saved.status_code == 302, _errors(saved)
    refused = other.post(url, second)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.non_field_errors() == [STALE.format(noun=noun)]
    assert STALE.format(noun=noun) in refused.content.decode()
    stored = type(row)._default_manager.get(pk=row.pk)
    assert getattr(stored, field) == first[field]

    # Reloaded, the form carries the new version and saves.
    reloaded = form_data(other.get(url))
    reloaded[field] = second[field]
    assert other.post(url, reloaded).status_code == 302
    assert getattr(type(row)._default_manager.get(pk=row.pk), field) == second[field]
