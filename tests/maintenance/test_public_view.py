"""Publishing a maintenance window: private by default, public under a public title of its own, set by staff in the
API and the admin in any status (a running window can be announced); requesters read public windows only, in their
public view, and a series' occurrences are published as the series is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from itsm.models import MaintenanceWindow
from itsm.models.maintenance import PUBLIC_FIELDS
from itsm.services.maintenance_lifecycle import maintenance_transition
from tests.etags import if_match
from tests.maintenance.conftest import START
from tests.maintenance.test_admin import URL as ADMIN_URL
from tests.maintenance.test_admin import form, signed_in

URL = "/api/v1/maintenance-windows/"
pytestmark = pytest.mark.django_db


def test_a_window_is_private_until_published_and_then_shows_its_public_view(as_agent, as_requester, make_window):
    window = make_window(description="INTERNAL: run the playbook on db-1")
    assert as_agent.get(f"{URL}{window.pk}/").json()["public"] is False
    assert as_requester.get(f"{URL}{window.pk}/").status_code == 404
    response = as_agent.patch(
        f"{URL}{window.pk}/", {"public": True, "public_title": "Database upgrade"}, format="json", **if_match(window)
    )
    assert response.status_code == 200, response.content
    shown = as_requester.get(f"{URL}{window.pk}/").json()
    assert set(shown) == set(PUBLIC_FIELDS)
    assert shown["public_title"] == "Database upgrade"
    assert "INTERNAL" not in str(shown)


def test_a_public_window_needs_a_public_title(as_agent, make_window):
    window = make_window()
    response = as_agent.patch(f"{URL}{window.pk}/", {"public": True}, format="json", **if_match(window))
    assert response.status_code == 400
    assert list(response.json()) == ["public_title"]


def test_a_running_window_can_be_published_but_not_otherwise_edited(as_agent, agent, make_window):
    window = make_window(backup_required=False)
    maintenance_transition(window_id=window.pk, actor=agent, to="in_progress")
    published = as_agent.patch(
        f"{URL}{window.pk}/", {"public": True, "public_title": "Upgrade"}, format="json", **if_match(window)
    )
    assert published.status_code == 200, published.content
    assert published.json()["public"] is True
    edited = as_agent.patch(
        f"{URL}{window.pk}/", {"title": "Other", "public_title": "Other"}, format="json", **if_match(window)
    )
    assert edited.status_code == 400
    assert list(edited.json()) == ["status"]


def test_the_occurrences_of_a_public_series_are_public(make_window):
    soon = timezone.now() + timedelta(days=1)
    series = make_window(
        starts_at=soon,
        ends_at=soon + timedelta(hours=1),
        recurrence="FREQ=WEEKLY",
        public=True,
        public_title="Weekly patching",
    )
    occurrences = MaintenanceWindow.objects.filter(series=series)
    assert occurrences.exists()
    assert set(occurrences.values_list("public", "public_title")) == {(True, "Weekly patching")}


def test_staff_publish_a_window_in_the_admin(agent: Any, database_service: Any) -> None:
    client = signed_in(agent)
    refused = client.post(f"{ADMIN_URL}add/", form(database_service, public="on", public_title=""))
    assert refused.status_code == 200
    assert "needs a public title" in refused.content.decode()
    saved = client.post(f"{ADMIN_URL}add/", form(database_service, public="on", public_title="Kernel update"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert MaintenanceWindow.objects.values_list("public", "public_title").get() == (True, "Kernel update")


def test_requesters_search_public_titles_only(as_requester, make_window):
    make_window(title="INTERNAL db-1", public=True, public_title="Database upgrade")
    make_window(
        title="Database private", starts_at=START + timedelta(days=1), ends_at=START + timedelta(days=1, hours=1)
    )
    assert len(as_requester.get(URL, {"search": "Database"}).json()["results"]) == 1
    assert as_requester.get(URL, {"search": "INTERNAL"}).json()["results"] == []
