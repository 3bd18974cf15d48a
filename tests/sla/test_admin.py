"""SLA policies and business calendars in the admin: holidays inline, the cases a policy applies to inline, one default
policy, recomputing due times."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import redis
from django.conf import settings
from django.test import Client

from itsm.models import BusinessCalendar, Holiday, SlaPolicy, SlaPolicyScope
from itsm.services.sla import sla_policy_default
from itsm.tasks.sla import recompute_sla
from tests.conftest import page_text
from tests.factories import ServiceFactory, make_ticket

# The policy page's inline of the cases it applies to, left empty.
NO_SCOPES = {"scopes-TOTAL_FORMS": "0", "scopes-INITIAL_FORMS": "0"}


def test_a_business_calendar_is_edited_with_its_holidays_inline(operator: Client) -> None:
    response = operator.post(
        "/admin/itsm/businesscalendar/add/",
        {
            "name": "Berlin office",
            "kind": "business_hours",
            "time_zone": "Europe/Berlin",
            "weekdays": "[0, 1, 2, 3, 4]",
            "day_start": "09:00",
            "day_end": "17:00",
            "holidays-TOTAL_FORMS": "1",
            "holidays-INITIAL_FORMS": "0",
            "holidays-MIN_NUM_FORMS": "0",
            "holidays-MAX_NUM_FORMS": "1000",
            "holidays-0-date": "2030-12-25",
            "holidays-0-name": "Christmas",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    calendar = BusinessCalendar.objects.get(name="Berlin office")
    assert list(Holiday.objects.filter(calendar=calendar).values_list("date", "name")) == [
        (date(2030, 12, 25), "Christmas")
    ]
    page = page_text(operator.get(f"/admin/itsm/businesscalendar/{calendar.pk}/change/"))
    assert "Christmas" in page
    assert "holidays-0-date" in page


def test_a_calendar_whose_day_ends_before_it_starts_is_refused_with_a_message(operator: Client) -> None:
    response = operator.post(
        "/admin/itsm/businesscalendar/add/",
        {
            "name": "Backwards",
            "kind": "business_hours",
            "time_zone": "Mars/Olympus",
            "weekdays": "[0, 1]",
            "day_start": "17:00",
            "day_end": "09:00",
            "holidays-TOTAL_FORMS": "0",
            "holidays-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "time_zone" in errors
    assert not BusinessCalendar.objects.filter(name="Backwards").exists()


def test_a_second_default_sla_policy_is_refused_with_a_message(operator: Client) -> None:
    policy = sla_policy_default()
    data = {
        "name": "Gold",
        "is_default": "on",
        "calendar": policy.calendar_id,
        **NO_SCOPES,
        **{
            f"{priority}_{target}_minutes": getattr(policy, f"{priority}_{target}_minutes")
            for priority in ("critical", "high", "medium", "low")
            for target in ("response", "resolution")
        },
    }
    response = operator.post("/admin/itsm/slapolicy/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() or response.context["adminform"].form.errors
    assert SlaPolicy.objects.count() == 1


def test_the_sla_policy_recompute_action_queues_the_recompute_of_open_tickets(operator: Client, requester: Any) -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("default")
    policy = sla_policy_default()
    ticket = make_ticket(requester, title="Printer jams", priority="medium")
    SlaPolicy.objects.filter(pk=policy.pk).update(medium_resolution_minutes=60)
    response = operator.post(
        "/admin/itsm/slapolicy/", {"action": "recompute", "_selected_action": [policy.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "being recomputed" in page_text(response)
    assert _queued_tasks("default") == ["itsm.tasks.sla.recompute_sla"]
    recompute_sla()  # what the worker runs when it takes the message
    ticket.refresh_from_db()
    assert ticket.resolution_due_at is not None
    assert ticket.resolution_due_at - ticket.created_at == timedelta(minutes=60)


def _queued_tasks(queue: str) -> list[str]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return [json.loads(message)["headers"]["task"] for message in client.lrange(queue, 0, -1)]


def test_saving_the_sla_policy_queues_a_recompute_that_moves_the_due_times(
    operator: Client, requester: Any, django_capture_on_commit_callbacks: Any
) -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("default")
    policy = sla_policy_default()
    ticket = make_ticket(requester, priority="medium")
    form = {
        "name": policy.name,
        "is_default": "on",
        "calendar": policy.calendar_id,
        **NO_SCOPES,
        **{
            f"{p}_{t}_minutes": getattr(policy, f"{p}_{t}_minutes")
            for p in ("critical", "high", "medium", "low")
            for t in ("response", "resolution")
        },
        "medium_resolution_minutes": "120",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(f"/admin/itsm/slapolicy/{policy.pk}/change/", form)
    assert response.status_code == 302
    assert _queued_tasks("default") == ["itsm.tasks.sla.recompute_sla"]
    recompute_sla()  # what the worker runs when it takes the message
    ticket.refresh_from_db()
    assert ticket.resolution_due_at is not None
    assert ticket.resolution_due_at - ticket.created_at == timedelta(minutes=120)


def _policy_form(policy: SlaPolicy, name: str, cases: list[tuple[Any, str]]) -> dict[str, Any]:
    """The policy page as posted: its fields with the default's targets, and `cases` as new rows of the inline."""
    form: dict[str, Any] = {
        "name": name,
        "calendar": policy.calendar_id,
        **{
            f"{p}_{t}_minutes": getattr(policy, f"{p}_{t}_minutes")
            for p in ("critical", "high", "medium", "low")
            for t in ("response", "resolution")
        },
        "scopes-TOTAL_FORMS": str(len(cases)),
        "scopes-INITIAL_FORMS": "0",
    }
    for number, (service, priority) in enumerate(cases):
        form[f"scopes-{number}-service"] = service.pk if service is not None else ""
        form[f"scopes-{number}-priority"] = priority
    return form


def test_a_policy_is_added_with_the_cases_it_applies_to_and_open_tickets_move_onto_it(
    operator: Client, requester: Any, django_capture_on_commit_callbacks: Any
) -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("default")
    email = ServiceFactory.create(name="E-mail", slug="email")
    ticket = make_ticket(requester, service=email, priority="high")
    form = _policy_form(sla_policy_default(), "Mail", [(email, ""), (None, "critical")])
    form["high_response_minutes"] = "20"
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post("/admin/itsm/slapolicy/add/", form)
    assert response.status_code == 302, response.context and response.context["inline_admin_formsets"][0].formset.errors
    mail = SlaPolicy.objects.get(name="Mail")
    assert set(mail.scopes.values_list("service__slug", "priority")) == {(None, "critical"), ("email", "")}
    assert _queued_tasks("default") == ["itsm.tasks.sla.recompute_sla"]
    recompute_sla()  # what the worker runs when it takes the message
    ticket.refresh_from_db()
    assert ticket.sla_policy == mail
    assert ticket.response_due_at is not None
    assert ticket.response_due_at - ticket.created_at == timedelta(minutes=20)
    listing = page_text(operator.get("/admin/itsm/slapolicy/"))
    assert "E-mail, any priority; any service, critical" in listing


def test_a_case_named_twice_on_one_page_is_refused_with_a_message(operator: Client) -> None:
    email = ServiceFactory.create(name="E-mail", slug="email")
    response = operator.post(
        "/admin/itsm/slapolicy/add/", _policy_form(sla_policy_default(), "Mail", [(email, "high"), (email, "high")])
    )
    assert response.status_code == 200
    assert "The same service and priority are named twice." in page_text(response)
    assert not SlaPolicy.objects.filter(name="Mail").exists()


def test_a_case_another_policy_holds_is_refused_with_a_message(operator: Client) -> None:
    email = ServiceFactory.create(name="E-mail", slug="email")
    default = sla_policy_default()
    SlaPolicyScope.objects.create(policy=default, service=email, priority="high")
    response = operator.post("/admin/itsm/slapolicy/add/", _policy_form(default, "Mail", [(email, "high")]))
    assert response.status_code == 200
    assert "A policy already applies to this service and priority." in page_text(response)
    assert not SlaPolicy.objects.filter(name="Mail").exists()
