"""The maintenance windows in the Django admin: listed, scheduled through the service, cancelled in bulk."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from itsm.models import MaintenanceWindow
from tests.maintenance.conftest import START

URL = "/admin/itsm/maintenancewindow/"


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form(service: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "title": "Kernel update",
        "description": "",
        "starts_at_0": START.strftime("%Y-%m-%d"),
        "starts_at_1": START.strftime("%H:%M:%S"),
        "ends_at_0": START.strftime("%Y-%m-%d"),
        "ends_at_1": (START + timedelta(hours=1)).strftime("%H:%M:%S"),
        "recurrence": "",
        "notify_before": "01:00:00",
        "backup_required": "on",
        "silence_alerts": "on",
        "checks": "[]",
        "verify_for": "00:05:00",
        "owner": "",
        "services": [service.pk],
    }
    data.update(overrides)
    return data


def test_an_agent_lists_and_opens_windows(agent, make_window):
    window = make_window()
    client = signed_in(agent)
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}{window.pk}/change/").status_code == 200
    assert client.get(f"{URL}add/").status_code == 200


def test_adding_a_window_in_the_admin_creates_it_through_the_service(agent, database_service):
    response = signed_in(agent).post(f"{URL}add/", form(database_service))
    assert response.status_code == 302, response.content.decode()[:2000]
    window = MaintenanceWindow.objects.get()
    assert window.verify_for == timedelta(minutes=5)
    assert window.owner == agent
    assert window.created_by == agent
    assert list(window.services.all()) == [database_service]


def test_an_end_before_the_start_is_refused_with_a_message(agent, database_service):
    response = signed_in(agent).post(f"{URL}add/", form(database_service, ends_at_1="01:00:00"))
    assert response.status_code == 200
    assert "The end must be after the start." in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_a_verification_period_over_a_day_is_refused_with_a_message(agent, database_service):
    response = signed_in(agent).post(f"{URL}add/", form(database_service, verify_for="1 01:00:00"))
    assert response.status_code == 200
    assert "The verification period is from 0 (check once) to 24 hours." in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_cancelling_in_bulk_goes_through_the_lifecycle(agent, make_window):
    window = make_window()
    response = signed_in(agent).post(URL, {"action": "cancel", "_selected_action": [window.pk]})
    assert response.status_code == 302
    window.refresh_from_db()
    assert window.status == MaintenanceWindow.Status.CANCELLED


def test_a_recurring_window_added_in_the_admin_has_occurrences_with_its_services(agent, database_service):
    soon = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    data = form(database_service, recurrence="FREQ=DAILY;COUNT=3", starts_at_0=soon, ends_at_0=soon)
    signed_in(agent).post(f"{URL}add/", data)
    occurrences = MaintenanceWindow.objects.exclude(series=None)
    assert occurrences.count() == 2
    assert all(list(w.services.all()) == [database_service] for w in occurrences)


def test_editing_the_services_in_the_admin_saves_them(agent, make_window, database_service):
    window = make_window(services=[])
    data = form(database_service, title=window.title)
    response = signed_in(agent).post(f"{URL}{window.pk}/change/", data)
    assert response.status_code == 302
    assert list(window.services.all()) == [database_service]
